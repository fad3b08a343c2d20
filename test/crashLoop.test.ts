import { PASSWORD, sleep, TestCluster } from './support/cluster';
import { expectNothingLost, writeRidesFor } from './support/load';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start();
});
afterAll(async () => {
  await cluster?.stop();
});

describe('repeated master crashes', () => {
  it('keeps every acknowledged write, applies none twice and leaves identical replicas (4 writers, 18 s, a crash every 3 s)', async () => {
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'chaos', p: PASSWORD });
    let crashes = 0;
    const crasher = async () => {
      for (let t = 3000; t < 18_000; t += 3000) {
        await sleep(3000);
        const res = await cluster.admin('mutation { crashMaster { id } }');
        if (!res.errors) crashes++;
      }
    };
    const [{ acknowledged, failed: failures }] = await Promise.all([
      writeRidesFor(cluster, { createdBy: 'chaos', source: 5, destination: 6, ms: 18_000, writers: 4, epochYear: 2034 }),
      crasher(),
    ]);
    expect(crashes).toBeGreaterThanOrEqual(4);

    await cluster.waitHealthy();
    await expectNothingLost(cluster, acknowledged, 5, 6);
    process.stdout.write(`crash loop: ${acknowledged.length} acknowledged, ${failures} failed, ${crashes} crashes\n`);
  });
});
