import http from 'node:http';

/**
 * The HTTP limit of `npm run bench`: a bare Node server answering every request with a
 * fixed body (a real Q1 answer), so the figure is what Node's HTTP and the load
 * generator allow on this machine, with no GraphQL or database work at all.
 * Usage: BODY=... PORT=... node dist/bench/fixedBodyServer.js
 */
const body = Buffer.from(process.env.BODY ?? '{}');
http
  .createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
  })
  .listen(Number(process.env.PORT), () => process.stdout.write('fixed body ready\n'));
