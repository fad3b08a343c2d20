import { isAlive } from '../gateway/runtimes/process';
import { PASSWORD, TestCluster, waitUntil } from './support/cluster';

describe.each(['process', 'docker'])('a gateway restart (%s runtime)', (runtime) => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start({ WORKER_RUNTIME: runtime });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('re-adopts the running workers instead of starting a second set, and still replaces and stops them', async () => {
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'survivor', p: PASSWORD });
    const before = await cluster.workers();
    await cluster.crashAndRestartGateway();
    const after = await cluster.workers();
    expect(after.map((w) => w.pid).sort()).toEqual(before.map((w) => w.pid).sort());
    expect(await cluster.data('{ user(username: "survivor") { username } }')).toEqual({ user: { username: 'survivor' } });

    // The adopted master's death is noticed and it is replaced, by the restarted gateway
    // orchestrating already: the dead one's process is surely gone, so its session (6 s)
    // is not waited for.
    const master = after.find((w) => w.role === 'MASTER')!;
    const crashedAt = Date.now();
    await cluster.admin('mutation { crashMaster { id } }');
    // Timed to the new master alone: the crashed worker's own restart (a container start
    // under the suite's load) is not what this is about.
    await waitUntil('a new master', async () => (await cluster.workers()).some((w) => w.role === 'MASTER' && w.pid !== master.pid), 30_000);
    const replacedMs = Date.now() - crashedAt;
    process.stdout.write(`${runtime}: adopted master replaced ${replacedMs} ms after its crash, right after a gateway restart\n`);
    expect(replacedMs).toBeLessThan(3000);
    await waitUntil(
      'two workers serving',
      async () => {
        const ws = await cluster.workers();
        return ws.length === 2 && ws.every((w) => w.role !== 'STARTING');
      },
      30_000,
    );

    const pids = (await cluster.workers()).map((w) => w.pid);
    await cluster.stop();
    await waitUntil('every worker stopped', async () => pids.every((pid) => !isAlive(pid)), 20_000);
  });
});
