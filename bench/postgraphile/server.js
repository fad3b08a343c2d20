// PostGraphile 4 on the baseline database, as a user would deploy it for reads.
// Plain JavaScript in its own package: PostGraphile 4 needs graphql 15, ridedb uses 16.
// Usage: DATABASE_URL=... PORT=... node bench/postgraphile/server.js
process.env.NODE_ENV ??= 'production';
const http = require('node:http');
const { postgraphile } = require('postgraphile');

const middleware = postgraphile(process.env.DATABASE_URL, 'public', {
  disableQueryLog: true,
  graphiql: false,
  watchPg: false,
  retryOnInitFail: false,
  disableDefaultMutations: true,
});
http.createServer(middleware).listen(Number(process.env.PORT), () => process.stdout.write('postgraphile ready\n'));
