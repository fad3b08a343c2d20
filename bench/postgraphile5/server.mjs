// PostGraphile 5 (grafast) on the baseline database, as its documentation deploys it for
// production: the Amber preset, a pg service, grafserv on Node's http server, mutations
// off (reads only, as for PostGraphile 4), no explain, no GraphiQL.
// Runs on Node 22 (this folder's node_modules/.bin/node): PostGraphile 5 needs it.
// Usage: DATABASE_URL=... PORT=... node_modules/.bin/node bench/postgraphile5/server.mjs
process.env.NODE_ENV ??= 'production';
import { createServer } from 'node:http';
import { postgraphile } from 'postgraphile';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import { makePgService } from 'postgraphile/adaptors/pg';
import { grafserv } from 'postgraphile/grafserv/node';

const preset = {
  extends: [PostGraphileAmberPreset],
  // Index behaviours off: riders ordered by joined_at, as ridedb lists them (PostGraphile 4 orders by any column).
  disablePlugins: ['PgMutationCreatePlugin', 'PgMutationUpdateDeletePlugin', 'PgIndexBehaviorsPlugin'],
  pgServices: [makePgService({ connectionString: process.env.DATABASE_URL, schemas: ['public'], poolConfig: { max: 10 } })],
  grafserv: { graphqlPath: '/graphql', graphiql: false, watch: false },
  grafast: { explain: false },
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
const server = createServer();
server.once('listening', () => process.stdout.write('postgraphile5 ready\n'));
await serv.addTo(server);
server.listen(Number(process.env.PORT), '127.0.0.1');
