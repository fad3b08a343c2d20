// The fastest GraphQL server a skilled engineer would write by hand for ridedb's queries:
// Mercurius on Fastify, graphql-jit (compiled queries), batched loaders (one SQL per
// field per request, no N+1), pg with a pool of 10 like a ridedb worker. It serves
// ridedb's own SDL (schema.graphql), so clients send the same query text; only the
// fields the benchmark asks are implemented, reads and the two writes of the mix.
// Usage: DATABASE_URL=... PORT=... node bench/mercurius/server.js
process.env.NODE_ENV ??= 'production';
const fs = require('node:fs');
const path = require('node:path');
const Fastify = require('fastify');
const mercurius = require('mercurius');
const { GraphQLScalarType } = require('graphql');
const pg = require('pg');

pg.types.setTypeParser(20, Number); // bigint ids are GraphQL Ints
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const schema = fs.readFileSync(path.join(__dirname, '../../schema.graphql'), 'utf8');
const PAGE_DEFAULT = 100;
const RIDE = 'id, created_by, ts, source, destination';

const byKey = (rows, key) => new Map(rows.map((r) => [r[key], r]));

const resolvers = {
  DateTimeISO: new GraphQLScalarType({ name: 'DateTimeISO', serialize: (d) => (d instanceof Date ? d : new Date(d)).toISOString() }),
  Query: {
    rides: async (_, { source, destination, upcomingOnly = true, first }) => {
      const when = upcomingOnly ? ' AND ts > now()' : '';
      const { rows } = await pool.query({
        name: `rides${upcomingOnly ? 'Up' : 'All'}`,
        text: `SELECT ${RIDE} FROM rides WHERE source = $1 AND destination = $2${when} ORDER BY ts, id LIMIT $3`,
        values: [source, destination, first ?? PAGE_DEFAULT],
      });
      return rows;
    },
    ride: async (_, { id }) => {
      const { rows } = await pool.query({ name: 'ride', text: `SELECT ${RIDE} FROM rides WHERE id = $1`, values: [id] });
      return rows[0] ?? null;
    },
  },
  Mutation: {
    createRide: async (_, { createdBy, timestamp, source, destination }) => {
      const { rows } = await pool.query({
        name: 'createRide',
        text: `INSERT INTO rides (id, created_by, ts, source, destination) VALUES (nextval('bench_ride_ids'), $1, $2, $3, $4) RETURNING ${RIDE}`,
        values: [createdBy, timestamp, source, destination],
      });
      return rows[0];
    },
    joinRide: async (_, { rideId, username }) => {
      await pool.query({
        name: 'joinRide',
        text: 'INSERT INTO ride_riders (ride_id, username, joined_at) VALUES ($1, $2, now()) ON CONFLICT DO NOTHING',
        values: [rideId, username],
      });
      const { rows } = await pool.query({ name: 'ride', text: `SELECT ${RIDE} FROM rides WHERE id = $1`, values: [rideId] });
      return rows[0];
    },
  },
  Ride: {
    timestamp: (r) => r.ts,
  },
};

const areaLoader = (column) => async (queries) => {
  const { rows } = await pool.query({ name: 'areas', text: 'SELECT id, name FROM areas WHERE id = ANY($1)', values: [[...new Set(queries.map((q) => q.obj[column]))]] });
  const areas = byKey(rows, 'id');
  return queries.map((q) => areas.get(q.obj[column]));
};

const loaders = {
  Ride: {
    createdBy: async (queries) => {
      const names = [...new Set(queries.map((q) => q.obj.created_by))];
      const { rows } = await pool.query({ name: 'users', text: 'SELECT username, created_at AS "createdAt" FROM users WHERE username = ANY($1)', values: [names] });
      const users = byKey(rows, 'username');
      return queries.map((q) => users.get(q.obj.created_by));
    },
    riders: async (queries) => {
      const ids = [...new Set(queries.map((q) => q.obj.id))];
      const { rows } = await pool.query({
        name: 'riders',
        text: `SELECT rr.ride_id, u.username, u.created_at AS "createdAt" FROM ride_riders rr JOIN users u ON u.username = rr.username
                WHERE rr.ride_id = ANY($1) ORDER BY rr.ride_id, rr.joined_at, rr.username`,
        values: [ids],
      });
      const byRide = new Map();
      for (const r of rows) {
        if (!byRide.has(r.ride_id)) byRide.set(r.ride_id, []);
        byRide.get(r.ride_id).push(r);
      }
      return queries.map((q) => (byRide.get(q.obj.id) ?? []).slice(0, q.params.first ?? PAGE_DEFAULT));
    },
    source: areaLoader('source'),
    destination: areaLoader('destination'),
  },
};

async function main() {
  // Ride ids for the mix's writes, far above the copied ones.
  await pool.query('CREATE SEQUENCE IF NOT EXISTS bench_ride_ids START 1000000000');
  const app = Fastify({ logger: false });
  app.register(mercurius, { schema, resolvers, loaders, jit: 1, graphiql: false, path: '/graphql' });
  await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
  process.stdout.write('mercurius ready\n');
}

main().catch((err) => {
  process.stderr.write(`mercurius failed: ${err.stack}\n`);
  process.exit(1);
});
