import { isAlive } from '../gateway/runtimes/process';
import { PASSWORD, sleep, TestCluster, waitUntil, type WorkerInfo } from './support/cluster';
import { expectNothingLost, writeRidesFor, type AcknowledgedRide } from './support/load';
import { PrivateZookeeper } from './support/privateZookeeper';

// A hung worker keeps its process but stops writing to ZooKeeper: the orchestrator must
// fence it (kill it through the runtime) once its heartbeat has stopped for
// HUNG_WORKER_MS (the default, 1 s), long before its session expires, so that a master
// frees WriteQ and a slave the reads it had taken, and it is replaced.
const SESSION_MS = 4000;
const HUNG_WORKER_MS = 1000;

let zk: PrivateZookeeper;
let cluster: TestCluster;
beforeAll(async () => {
  // ZooKeeper expires sessions on its ticks, up to one tick late; Debian's 2 s tick would
  // be most of the 1 s allowed beyond the session timeout, so this test brings its own
  // ZooKeeper with a 200 ms tick.
  zk = await PrivateZookeeper.prepare({ tickTimeMs: 200 });
  await zk.start();
  cluster = await TestCluster.start({
    ZK_HOSTS: zk.hosts,
    ZK_SESSION_TIMEOUT_MS: String(SESSION_MS),
    HUNG_WORKER_MS: String(HUNG_WORKER_MS),
    // Every read goes to a replica: the gateway's cache would answer repeated ones itself.
    READ_CACHE_BYTES: '0',
  });
  await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'driver', p: PASSWORD });
});
afterAll(async () => {
  await cluster?.stop();
  await zk?.remove();
});

/** The longest time without an acknowledged write, from `from` on. */
function longestGap(acknowledged: AcknowledgedRide[], from: number): number {
  const times = [
    from,
    ...acknowledged
      .map((a) => a.at)
      .filter((t) => t >= from)
      .sort((a, b) => a - b),
  ];
  return Math.max(...times.slice(1).map((t, i) => t - times[i]));
}

describe('fencing', () => {
  it('replaces a frozen master: writes resume within HUNG_WORKER_MS + 1 s, long before its session expires, and the old process is fenced', async () => {
    const frozen = await cluster.master();
    let stoppedAt = 0;
    const freeze = async () => {
      await sleep(1500);
      stoppedAt = Date.now();
      process.kill(frozen.pid, 'SIGSTOP');
      await sleep(SESSION_MS + 3000);
      // Woken, it must acknowledge nothing more: it is gone, or its lease lapsed.
      if (isAlive(frozen.pid)) process.kill(frozen.pid, 'SIGCONT');
    };
    const [{ acknowledged }] = await Promise.all([
      writeRidesFor(cluster, { createdBy: 'driver', source: 5, destination: 6, ms: SESSION_MS + 6000, writers: 4, epochYear: 2034 }),
      freeze(),
    ]);
    expect(isAlive(frozen.pid)).toBe(false);
    const newMaster = await cluster.master();
    expect(newMaster.pid).not.toBe(frozen.pid);
    const gap = longestGap(acknowledged, stoppedAt);
    process.stdout.write(`frozen master: no write acknowledged for ${gap} ms (HUNG_WORKER_MS ${HUNG_WORKER_MS}, session timeout ${SESSION_MS} ms)\n`);
    expect(gap).toBeLessThan(HUNG_WORKER_MS + 1000);
    expect(acknowledged.filter((a) => a.at > stoppedAt + SESSION_MS + 1000).length).toBeGreaterThan(0);
    await expectNothingLost(cluster, acknowledged, 5, 6);
  });

  it('replaces a frozen slave within HUNG_WORKER_MS, and the reads it had taken are answered by another replica', async () => {
    const slave = (await cluster.workers()).find((w) => w.role === 'SLAVE') as WorkerInfo;
    const freeze = async () => {
      await sleep(500);
      process.kill(slave.pid, 'SIGSTOP');
    };
    const reads: Array<{ ms: number; ok: boolean }> = [];
    const reader = async (stopAt: number) => {
      while (Date.now() < stopAt) {
        const began = Date.now();
        const res = await cluster.gql('query($s: Int!, $d: Int!) { rides(source: $s, destination: $d) { id } }', { s: 7, d: 8 });
        reads.push({ ms: Date.now() - began, ok: !res.errors });
      }
    };
    const stopAt = Date.now() + SESSION_MS;
    const [{ acknowledged }] = await Promise.all([
      writeRidesFor(cluster, { createdBy: 'driver', source: 7, destination: 8, ms: SESSION_MS + 4000, writers: 2, epochYear: 2035 }),
      freeze(),
      ...Array.from({ length: 4 }, () => reader(stopAt)),
    ]);
    const slowest = Math.max(...reads.map((r) => r.ms));
    process.stdout.write(`frozen slave: ${reads.length} reads meanwhile, the slowest ${slowest} ms (HUNG_WORKER_MS ${HUNG_WORKER_MS}, session timeout ${SESSION_MS} ms)\n`);
    expect(reads.filter((r) => !r.ok)).toEqual([]);
    // Before the watchdog a read held by the frozen slave waited for its session to expire.
    expect(slowest).toBeLessThan(HUNG_WORKER_MS + 1500);
    await waitUntil('the frozen slave fenced and replaced', async () => {
      const again = (await cluster.workers()).find((w) => w.id === slave.id);
      return !isAlive(slave.pid) && again && again.pid !== slave.pid && again.role === 'SLAVE';
    });
    await expectNothingLost(cluster, acknowledged, 7, 8);
  });
});
