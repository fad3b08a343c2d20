import { execFileSync } from 'node:child_process';
import { isAlive } from '../gateway/runtimes/process';
import { TestCluster, waitUntil } from './support/cluster';
import { EventRecorder } from './support/events';

const containersOf = (cluster: string) =>
  execFileSync('docker', ['ps', '-a', '-q', '--filter', `label=ridedb.cluster=${cluster}`], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);

describe.each(['process', 'docker'])('the %s runtime', (runtime) => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start({ WORKER_RUNTIME: runtime });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('reports WORKER_LEFT, LEADER_ELECTED with a higher epoch and WORKER_JOINED for the replacement after crashMaster', async () => {
    const recorder = new EventRecorder(cluster.url);
    await recorder.connected();
    const { cluster: before } = await cluster.data<{ cluster: { epoch: number } }>('{ cluster { epoch } }');
    const crashed = await cluster.admin<{ crashMaster: { id: string; pid: number } }>('mutation { crashMaster { id pid } }');
    const victim = crashed.data!.crashMaster;

    const events = await waitUntil(
      'left, elected, joined',
      async () => {
        const e = recorder.events;
        const left = e.findIndex((x) => x.type === 'WORKER_LEFT' && x.workerId === victim.id);
        const elected = e.findIndex((x) => x.type === 'LEADER_ELECTED' && (x.epoch ?? 0) > before.epoch);
        const joined = e.findIndex((x, i) => x.type === 'WORKER_JOINED' && i > left && x.pid !== victim.pid);
        return left >= 0 && elected > left && joined > left ? e : undefined;
      },
      30_000,
    );
    expect(events.find((x) => x.type === 'LEADER_ELECTED')!.workerId).not.toBe(victim.id);
    await recorder.close();

    await cluster.waitHealthy();
    const workers = await cluster.workers();
    expect(workers).toHaveLength(2);
    if (runtime === 'docker') {
      const ids = containersOf(cluster.config.cluster);
      expect(ids).toHaveLength(2);
      const { workers: described } = await cluster.data<{ workers: Array<{ containerId: string | null }> }>('{ workers { containerId } }');
      for (const w of described) expect(ids.some((id) => w.containerId?.startsWith(id))).toBe(true);
    }
  });

  it('crashSlave kills the highest-pid slave and a replacement joins', async () => {
    await cluster.waitHealthy();
    // Two slaves, so that "the highest pid" is a choice.
    await cluster.admin('mutation { scaleSlaves(count: 2) { epoch } }');
    const slaves = await waitUntil(
      'two slaves',
      async () => {
        const s = (await cluster.workers()).filter((w) => w.role === 'SLAVE');
        return s.length === 2 ? s.sort((a, b) => b.pid - a.pid) : undefined;
      },
      60_000,
    );
    expect(slaves[0].pid).toBeGreaterThan(slaves[1].pid);
    const crashed = await cluster.admin<{ crashSlave: { id: string; pid: number } }>('mutation { crashSlave { id pid } }');
    expect(crashed.data!.crashSlave).toEqual({ id: slaves[0].id, pid: slaves[0].pid });
    await waitUntil(
      'a replacement slave beside the survivor',
      async () => {
        const now = (await cluster.workers()).filter((w) => w.role === 'SLAVE');
        // The replacement may reuse the victim's id (a restart), never its process.
        return now.length === 2 && now.some((w) => w.id === slaves[1].id && w.pid === slaves[1].pid) && !now.some((w) => w.pid === slaves[0].pid);
      },
      60_000,
    );
    await cluster.admin('mutation { scaleSlaves(count: 1) { epoch } }');
  });

  it('stops every worker it started on SIGTERM', async () => {
    const pids = (await cluster.workers()).map((w) => w.pid);
    await cluster.stop();
    await waitUntil('workers gone', async () => pids.every((pid) => !isAlive(pid)), 15_000);
    if (runtime === 'docker') expect(containersOf(cluster.config.cluster)).toEqual([]);
  });
});
