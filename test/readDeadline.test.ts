import { TestCluster, waitUntil } from './support/cluster';
import { lockRides, runningRideReads } from './support/rideLocks';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start({ READ_TIMEOUT_MS: '500' });
});
afterAll(async () => {
  await cluster?.stop();
});

describe('a read past its deadline', () => {
  it('is cancelled in PostgreSQL, not left running after the client was told UNAVAILABLE', async () => {
    const locks = await lockRides(cluster);
    try {
      const res = await cluster.gql('{ rideCount }');
      expect(res.errors?.[0]).toMatchObject({ extensions: { code: 'UNAVAILABLE' } });
      // The lock is still held, yet nothing waits on it any more.
      for (const url of locks.urls) await waitUntil('abandoned reads cancelled', async () => (await runningRideReads(url)) === 0, 10_000);
    } finally {
      await locks.release();
    }
    expect((await cluster.data<{ rideCount: number }>('{ rideCount }')).rideCount).toBe(0);
  });
});
