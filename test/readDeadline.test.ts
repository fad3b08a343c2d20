import { Client } from 'pg';
import { TestCluster, waitUntil } from './support/cluster';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start({ READ_TIMEOUT_MS: '500' });
});
afterAll(async () => {
  await cluster?.stop();
});

/** Reads of `rides` still running in a worker's database (waiting on our lock). */
async function waitingReads(databaseUrl: string): Promise<number> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE '%FROM rides%'`,
    );
    return rows[0].n;
  } finally {
    await client.end();
  }
}

describe('a read past its deadline', () => {
  it('is cancelled in PostgreSQL, not left running after the client was told UNAVAILABLE', async () => {
    const workers = await cluster.workers();
    // Every replica's rides table locked: any read of it waits.
    const lockers = await Promise.all(
      workers.map(async (w) => {
        const client = new Client({ connectionString: cluster.workerDatabaseUrl(w.id) });
        await client.connect();
        await client.query('BEGIN');
        await client.query('LOCK TABLE rides IN ACCESS EXCLUSIVE MODE');
        return { client, url: cluster.workerDatabaseUrl(w.id) };
      }),
    );
    try {
      const res = await cluster.gql('{ rideCount }');
      expect(res.errors?.[0]).toMatchObject({ extensions: { code: 'UNAVAILABLE' } });
      // The lock is still held, yet nothing waits on it any more.
      for (const { url } of lockers) await waitUntil('abandoned reads cancelled', async () => (await waitingReads(url)) === 0, 10_000);
    } finally {
      for (const { client } of lockers) {
        await client.query('ROLLBACK');
        await client.end();
      }
    }
    expect((await cluster.data<{ rideCount: number }>('{ rideCount }')).rideCount).toBe(0);
  });
});
