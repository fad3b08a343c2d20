import { Client } from 'pg';
import { queryOne, type TestCluster } from './cluster';

/** Every worker's rides table locked (ACCESS EXCLUSIVE): any read of it waits until `release` (which may be called again). */
export async function lockRides(cluster: TestCluster): Promise<{ urls: string[]; release(): Promise<void> }> {
  const urls = (await cluster.workers()).map((w) => cluster.workerDatabaseUrl(w.id));
  const lockers = await Promise.all(
    urls.map(async (url) => {
      const client = new Client({ connectionString: url });
      await client.connect();
      await client.query('BEGIN');
      await client.query('LOCK TABLE rides IN ACCESS EXCLUSIVE MODE');
      return client;
    }),
  );
  let released = false;
  return {
    urls,
    async release() {
      if (released) return;
      released = true;
      for (const client of lockers) {
        await client.query('ROLLBACK');
        await client.end();
      }
    },
  };
}

/** Statements on `rides` still running in a worker's database (waiting on the lock); `like`, only those whose text matches. */
export async function runningRideReads(databaseUrl: string, like = '%'): Promise<number> {
  const { n } = await queryOne<{ n: number }>(
    databaseUrl,
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE '%FROM rides%' AND query LIKE $1`,
    [like],
  );
  return n;
}
