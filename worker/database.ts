import { Client, Pool, type PoolClient } from 'pg';
import { MIGRATIONS } from './migrations';
import { type Logger } from '../platform';

/** Where this worker stands in the durable log, as persisted in `_dbaas_state`. */
export interface AppliedPosition {
  appliedSeq: number;
  epoch: number;
  /** Next stream offset to read from SyncQ's log. */
  streamOffset: number;
}

function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Creates the worker's own database on the server if it is not there yet. */
async function ensureDatabase(serverUrl: string, database: string): Promise<void> {
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rowCount) return;
    // Identifiers cannot be parameters; `database` is built from validated names only.
    await admin.query(`CREATE DATABASE "${database}"`);
  } catch (err) {
    // Two starts of the same worker may race; the loser finds it created.
    if ((err as { code?: string }).code !== '42P04') throw err;
  } finally {
    await admin.end();
  }
}

/** Runs `work` in one transaction on a pooled connection: commit on success, roll back on any error. */
/**
 * Logs a checked-out client's connection errors until the returned function is called
 * (before release). A checked-out client has no listener of the pool's: without one, its
 * connection dying (PostgreSQL stopped or killed) would be an uncaught 'error' that kills
 * the process before the failing query reaches the caller, whose handling (fail-stop,
 * retry, UNAVAILABLE) decides. The pool discards the broken client on release.
 */
export function logConnectionLoss(client: PoolClient, log: Logger, during: string): () => void {
  const onError = (err: Error) => log.warn({ err }, `PostgreSQL connection failed during ${during}`);
  client.on('error', onError);
  return () => client.off('error', onError);
}

export async function inTransaction<T>(pool: Pool, log: Logger, work: (client: PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const client = await pool.connect();
  const stopLogging = logConnectionLoss(client, log, 'a transaction');
  try {
    await client.query(begin);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: Error) => log.error({ err: rollbackErr }, 'rollback failed'));
    throw err;
  } finally {
    stopLogging();
    client.release();
  }
}

async function migrate(pool: Pool, log: Logger): Promise<void> {
  await pool.query('CREATE TABLE IF NOT EXISTS _dbaas_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
  const { rows } = await pool.query<{ name: string }>('SELECT name FROM _dbaas_migrations');
  const done = new Set(rows.map((r) => r.name));
  for (const m of MIGRATIONS) {
    if (done.has(m.name)) continue;
    await inTransaction(pool, log, async (client) => {
      await client.query(m.sql);
      await client.query('INSERT INTO _dbaas_migrations (name) VALUES ($1)', [m.name]);
    });
    log.info({ migration: m.name }, 'migration applied');
  }
}

export async function readPosition(pool: Pool): Promise<AppliedPosition> {
  const { rows } = await pool.query<{ applied_seq: string; epoch: number; stream_offset: string }>('SELECT applied_seq, epoch, stream_offset FROM _dbaas_state');
  return { appliedSeq: Number(rows[0].applied_seq), epoch: rows[0].epoch, streamOffset: Number(rows[0].stream_offset) };
}

/** Opens (creating and migrating if needed) the worker's database; one pool per process. */
export async function openWorkerDatabase(serverUrl: string, database: string, log: Logger): Promise<Pool> {
  await ensureDatabase(serverUrl, database);
  // Idle connections stay open: no connection setup on the request path after warm-up.
  // random_page_cost 1.1 (PostgreSQL's default, 4, models spinning disks): a replica's
  // working set is in memory or on SSD, and at 4 the planner reads a busy route's every
  // ride and sorts them for a page of 100 rather than walk the page index in order
  // (worker/migrations.ts 006), a cost that grows with the route.
  const pool = new Pool({ connectionString: withDatabase(serverUrl, database), max: 10, idleTimeoutMillis: 0, options: '-c random_page_cost=1.1' });
  pool.on('error', (err) => log.error({ err }, 'idle PostgreSQL connection failed'));
  await migrate(pool, log);
  return pool;
}
