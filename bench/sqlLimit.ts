import { Client } from 'pg';
import type { FieldSelection } from '../schema';
import { selectionStatement } from '../worker/selectionSql';
import type { LoadResult } from './lib';

/**
 * The SQL limit of `npm run bench`: the statement a slave runs for a query (the same
 * selection SQL, prepared), through pg with `clients` connections as fast as they go —
 * what PostgreSQL alone allows for it on this machine, with no HTTP, GraphQL or broker.
 */
export async function sqlLimit(databaseUrl: string, clients: number, seconds: number, next: () => FieldSelection[]): Promise<LoadResult> {
  const connections = await Promise.all(
    Array.from({ length: clients }, async () => {
      const c = new Client({ connectionString: databaseUrl });
      await c.connect();
      return c;
    }),
  );
  const latencies: number[] = [];
  let errors = 0;
  const until = Date.now() + seconds * 1000;
  try {
    await Promise.all(
      connections.map(async (c) => {
        while (Date.now() < until) {
          const { text, values } = selectionStatement(next());
          const started = performance.now();
          try {
            await c.query({ name: `s${text.length}:${hash(text)}`, text, values });
          } catch {
            errors++;
          }
          latencies.push(performance.now() - started);
        }
      }),
    );
  } finally {
    await Promise.all(connections.map((c) => c.end()));
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0);
  return { rps: Math.round(latencies.length / seconds), p50: at(0.5), p99: at(0.99), errors };
}

function hash(text: string): number {
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) | 0;
  return h;
}
