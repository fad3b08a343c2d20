import { execFileSync } from 'node:child_process';
import { isAlive } from '../gateway/runtimes/process';
import { TestCluster, sleep, waitUntil } from './support/cluster';
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
    await sleep(200);
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
    const slaves = (await cluster.workers()).filter((w) => w.role === 'SLAVE').sort((a, b) => b.pid - a.pid);
    const crashed = await cluster.admin<{ crashSlave: { id: string; pid: number } }>('mutation { crashSlave { id pid } }');
    expect(crashed.data!.crashSlave.pid).toBe(slaves[0].pid);
    await waitUntil('a replacement slave', async () => (await cluster.workers()).some((w) => w.role === 'SLAVE' && w.pid !== slaves[0].pid), 30_000);
  });

  it('stops every worker it started on SIGTERM', async () => {
    const pids = (await cluster.workers()).map((w) => w.pid);
    await cluster.stop();
    await waitUntil('workers gone', async () => pids.every((pid) => !isAlive(pid)), 15_000);
    if (runtime === 'docker') expect(containersOf(cluster.config.cluster)).toEqual([]);
  });
});
