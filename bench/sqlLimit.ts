import { Pool } from 'pg';
import type { FieldSelection } from '../schema';
import { prepared } from '../worker/preparedSql';
import { selectionStatement } from '../worker/selectionSql';
import type { LoadResult } from './lib';

/**
 * The SQL limit of `npm run bench`: the statement a slave runs for a query (the same
 * selection SQL, prepared), through pg with `clients` connections as fast as they go —
 * what PostgreSQL alone allows for it on this machine, with no HTTP, GraphQL or broker.
 */
export async function sqlLimit(databaseUrl: string, clients: number, seconds: number, next: () => FieldSelection[]): Promise<LoadResult> {
  const pool = new Pool({ connectionString: databaseUrl, max: clients });
  const connections = await Promise.all(Array.from({ length: clients }, () => pool.connect()));
  const latencies: number[] = [];
  let errors = 0;
  const until = Date.now() + seconds * 1000;
  try {
    await Promise.all(
      connections.map(async (c) => {
        const sql = prepared(c); // as a slave runs it
        while (Date.now() < until) {
          const { text, values } = selectionStatement(next());
          const started = performance.now();
          await sql.query(text, values).catch(() => errors++); // counted and reported, as the load generator's are
          latencies.push(performance.now() - started);
        }
      }),
    );
  } finally {
    for (const c of connections) c.release();
    await pool.end();
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0);
  return { rps: Math.round(latencies.length / seconds), requests: latencies.length, p50: at(0.5), p99: at(0.99), errors };
}
