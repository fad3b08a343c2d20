import '../gateway/productionDefaults';
import 'reflect-metadata';
import http from 'node:http';
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { Pool } from 'pg';
import { buildSchema } from 'type-graphql';
import { parseArgs } from '../schema';
import { readOperation, UNBOUNDED_READ } from '../worker/operations';
import type { GqlContext } from '../gateway/graphql/context';
import { QueryResolver, RideFieldsResolver, UserFieldsResolver } from '../gateway/graphql/resolvers';
import { newRequestContext, RideService, type Transport } from '../gateway/service';
import { prepared } from '../worker/preparedSql';

/**
 * The baseline a user would otherwise write: an Apollo Server with ridedb's own
 * type-graphql schema and resolvers, reading straight from one PostgreSQL database with
 * pg (no broker, no replication). Same SQL, same pool size as a ridedb worker.
 * Usage: DATABASE_URL=... PORT=... node dist/bench/baselineServer.js
 */
async function main() {
  const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 10, idleTimeoutMillis: 0 });
  const sql = prepared(pool);
  const direct: Transport = {
    lastSeq: 0,
    async read(op, args) {
      const entry = readOperation(op);
      return { result: (await entry.run(sql, parseArgs(entry.args, args), UNBOUNDED_READ)) as never, workerId: 'baseline' };
    },
    async write() {
      throw new Error('the baseline serves reads only');
    },
  };
  const service = new RideService(direct, { noteRead: () => {} });
  const schema = await buildSchema({ resolvers: [QueryResolver, UserFieldsResolver, RideFieldsResolver], validate: false });
  const apollo = new ApolloServer<GqlContext>({ schema });
  await apollo.start();
  const app = express();
  app.use(
    '/graphql',
    express.json(),
    expressMiddleware(apollo, {
      context: async () => ({ request: newRequestContext(), service, memo: new Map(), eventMemos: new WeakMap() }) as unknown as GqlContext,
    }),
  );
  http.createServer(app).listen(Number(process.env.PORT), () => process.stdout.write('baseline ready\n'));
}

main().catch((err: Error) => {
  process.stderr.write(`baseline failed: ${err.message}\n`);
  process.exit(1);
});
