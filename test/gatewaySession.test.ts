import fs from 'node:fs';
import { PASSWORD, sleep, TestCluster, waitUntil } from './support/cluster';

// A gateway whose ZooKeeper session expires (here: paused past the session timeout, as a
// long GC pause or a frozen VM would) opens a new session and registers again by itself:
// another gateway orchestrates meanwhile, and this one's cluster view, health and
// candidacy work again, without a restart.
let first: TestCluster;
let second: TestCluster;
beforeAll(async () => {
  first = await TestCluster.start({ ZK_SESSION_TIMEOUT_MS: '2000' });
  second = await first.addGateway();
  await first.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'driver', p: PASSWORD });
});
afterAll(async () => {
  if (first?.gateway.pid) process.kill(first.gateway.pid, 'SIGCONT');
  await second?.stopGateway();
  await first?.stop();
});

type ClusterInfo = { cluster: { orchestrator: string | null } };
const orchestratorOf = async (gateway: TestCluster) => (await gateway.data<ClusterInfo>('{ cluster { orchestrator } }')).cluster.orchestrator;

describe('an expired ZooKeeper session', () => {
  it('is replaced by a new one: the gateway steps down, registers again, and its view, health and candidacy work', async () => {
    const firstId = await orchestratorOf(first);
    expect(firstId).toMatch(/^g[0-9a-f]{8}$/);

    process.kill(first.gateway.pid!, 'SIGSTOP');
    try {
      // The server expires the paused gateway's session; its candidacy goes, the other gateway is elected.
      await waitUntil('the other gateway to orchestrate', async () => {
        const now = await orchestratorOf(second);
        return now !== null && now !== firstId;
      });
    } finally {
      process.kill(first.gateway.pid!, 'SIGCONT');
    }
    await waitUntil('the paused gateway to renew its session', async () => fs.readFileSync(first.logFile, 'utf8').includes('ZooKeeper session renewed'));
    expect(first.gateway.exitCode).toBeNull();
    await first.waitHealthy();

    // Its view follows the cluster again: a slave replaced by the other gateway shows up here.
    // (A crashed worker restarts under its id, as a new process.)
    const crashed = (await second.admin<{ crashSlave: { pid: number } }>('mutation { crashSlave { pid } }')).data!.crashSlave.pid;
    await waitUntil('the replacement in the resumed gateway’s view', async () => {
      const workers = await first.workers();
      return !workers.some((w) => w.pid === crashed) && workers.filter((w) => w.role === 'SLAVE').length === 1;
    });
    expect(await orchestratorOf(first)).toBe(await orchestratorOf(second));

    // Its candidacy is registered again: with the other gateway gone, it orchestrates.
    await second.stopGateway();
    await waitUntil('the resumed gateway to orchestrate again', async () => (await orchestratorOf(first)) === firstId);
    await sleep(200);
    const made = await first.data<{ createRide: { id: number } }>(
      'mutation { createRide(createdBy: "driver", timestamp: "2036-01-01T00:00:00Z", source: 3, destination: 4) { id } }',
    );
    expect((await first.data<{ ride: { id: number } }>(`{ ride(id: ${made.createRide.id}) { id } }`)).ride.id).toBe(made.createRide.id);

    // Orchestrating again, it counts each worker once: its own children among the running
    // workers it adopts once more (counted twice, it took them for a surplus and retired a slave).
    await waitUntil('one master and one slave', async () => {
      const workers = await first.workers();
      return workers.filter((w) => w.role === 'MASTER').length === 1 && workers.filter((w) => w.role === 'SLAVE').length === 1;
    });
    const settled = (await first.workers()).map((w) => w.pid).sort();
    await sleep(3000);
    expect((await first.workers()).map((w) => w.pid).sort()).toEqual(settled);
  });
});
