import { domainChecksums, PASSWORD, sleep, TestCluster, waitUntil } from './support/cluster';
import { writeRidesFor } from './support/load';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start();
});
afterAll(async () => {
  await cluster?.stop();
});

describe('repeated master crashes', () => {
  it('keeps every acknowledged write, applies none twice and leaves identical replicas (4 writers, 30 s, a crash every 5 s)', async () => {
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'chaos', p: PASSWORD });
    let crashes = 0;
    const crasher = async () => {
      for (let t = 5000; t < 30_000; t += 5000) {
        await sleep(5000);
        const res = await cluster.admin('mutation { crashMaster { id } }');
        if (!res.errors) crashes++;
      }
    };
    const [{ acknowledged, failed: failures }] = await Promise.all([
      writeRidesFor(cluster, { createdBy: 'chaos', source: 5, destination: 6, ms: 30_000, writers: 4, epochYear: 2034 }),
      crasher(),
    ]);
    expect(crashes).toBeGreaterThanOrEqual(4);

    await cluster.waitHealthy();
    const rides = await cluster.allRides(5, 6);
    const stored = new Map(rides.map((r) => [r.id, r.timestamp]));
    for (const { id, timestamp } of acknowledged) expect(stored.get(id)).toBe(timestamp);
    // Each attempted write has its own timestamp: a write applied twice would repeat one.
    expect(new Set(rides.map((r) => r.timestamp)).size).toBe(rides.length);

    const workers = await waitUntil('all workers serving', async () => {
      const ws = await cluster.workers();
      return ws.length === 2 && ws.every((w) => w.role !== 'STARTING') ? ws : undefined;
    });
    await waitUntil('identical replicas', async () => {
      const sums = await Promise.all(workers.map((w) => domainChecksums(cluster.workerDatabaseUrl(w.id))));
      return sums.every((s) => JSON.stringify(s) === JSON.stringify(sums[0]));
    });
    process.stdout.write(`crash loop: ${acknowledged.length} acknowledged, ${failures} failed, ${crashes} crashes\n`);
  });
});
