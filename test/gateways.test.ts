import os from 'node:os';
import { PASSWORD, sleep, TestCluster, waitUntil } from './support/cluster';
import { EventRecorder } from './support/events';
import { expectNothingLost, writeRidesFor } from './support/load';

// Several gateways serve one cluster; one orchestrates. Killing that one must not stop
// the others from serving, and one of them must take over orchestration.
let first: TestCluster;
let second: TestCluster;
beforeAll(async () => {
  first = await TestCluster.start();
  second = await first.addGateway();
  await first.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'driver', p: PASSWORD });
});
afterAll(async () => {
  await second?.stopGateway();
  await first?.stop();
});

type ClusterInfo = { cluster: { orchestrator: string | null; desiredSlaves: number; scalingMode: string } };

describe('several gateways', () => {
  it('serve the same cluster with one orchestrator, read each other’s writes, and share admin and events', async () => {
    const a = await first.data<ClusterInfo>('{ cluster { orchestrator } }');
    const b = await second.data<ClusterInfo>('{ cluster { orchestrator } }');
    expect(a.cluster.orchestrator).toMatch(/^g[0-9a-f]{8}$/);
    expect(b.cluster.orchestrator).toBe(a.cluster.orchestrator);
    expect((await first.workers()).length).toBe(2); // nobody spawned a second set

    // Read-your-writes across gateways through the seq header.
    const created = await first.gql<{ createRide: { id: number } }>(
      'mutation { createRide(createdBy: "driver", timestamp: "2036-01-01T00:00:00Z", source: 9, destination: 10) { id } }',
    );
    const seq = created.headers.get('x-dbaas-seq')!;
    const read = await second.gql<{ ride: { id: number } | null }>(`{ ride(id: ${created.data!.createRide.id}) { id } }`, {}, { 'x-dbaas-min-seq': seq });
    expect(read.data?.ride?.id).toBe(created.data!.createRide.id);

    // An admin target set through the gateway that does not orchestrate is acted on, and
    // every gateway reports it.
    const events = new EventRecorder(first.url, ['SCALED_UP', 'SCALED_DOWN']);
    await events.connected();
    const scaled = await second.admin<ClusterInfo>('mutation { scaleSlaves(count: 2) { desiredSlaves scalingMode } }');
    expect(scaled.data?.cluster ?? scaled.data).toBeTruthy();
    await waitUntil('three workers', async () => (await first.workers()).filter((w) => w.role === 'SLAVE').length === 2);
    await waitUntil('SCALED_UP seen through the other gateway', async () => events.events.some((e) => e.type === 'SCALED_UP' && e.toSlaves === 2));
    expect((await first.data<ClusterInfo>('{ cluster { scalingMode desiredSlaves } }')).cluster).toMatchObject({ scalingMode: 'MANUAL', desiredSlaves: 2 });
    await second.admin('mutation { scaleSlaves(count: 1) { desiredSlaves } }');
    await waitUntil('two workers again', async () => (await first.workers()).length === 2, 30_000);
    await events.close();
  });

  it('hand orchestration over when the orchestrating gateway dies, losing no write', async () => {
    const before = (await second.data<ClusterInfo>('{ cluster { orchestrator } }')).cluster.orchestrator;
    const events = new EventRecorder(second.url, ['ORCHESTRATOR_ELECTED']);
    await events.connected();
    const workersBefore = await second.workers();

    // On the same machine the dead gateway's process is surely gone, so the next one takes
    // over at once instead of after its session timeout (6 s).
    let handoverMs = 0;
    const killFirst = async () => {
      await sleep(1000);
      first.gateway.kill('SIGKILL');
      const killedAt = Date.now();
      await waitUntil('ORCHESTRATOR_ELECTED', async () => events.events.some((e) => e.type === 'ORCHESTRATOR_ELECTED'), 30_000);
      handoverMs = Date.now() - killedAt;
    };
    const [onFirst, onSecond] = await Promise.all([
      writeRidesFor(first, { createdBy: 'driver', source: 11, destination: 12, ms: 1000, writers: 2, epochYear: 2037 }),
      writeRidesFor(second, { createdBy: 'driver', source: 11, destination: 12, ms: 8000, writers: 2, epochYear: 2038 }),
      killFirst(),
    ]);
    process.stdout.write(`orchestration handed over ${handoverMs} ms after the orchestrating gateway was killed\n`);
    expect(handoverMs).toBeLessThan(2000);
    const orchestrator = await waitUntil(
      'another gateway orchestrating',
      async () => {
        const now = (await second.data<ClusterInfo>('{ cluster { orchestrator } }')).cluster.orchestrator;
        return now && now !== before ? now : undefined;
      },
      30_000,
    );
    expect(events.events.some((e) => e.type === 'ORCHESTRATOR_ELECTED')).toBe(true);
    // The running workers were adopted, not restarted.
    expect((await second.workers()).map((w) => w.pid).sort()).toEqual(workersBefore.map((w) => w.pid).sort());
    expect(orchestrator).not.toBe(before);

    // The new orchestrator heals a crashed master.
    const crashed = await second.admin<{ crashMaster: { id: string; pid: number } }>('mutation { crashMaster { id pid } }');
    await waitUntil(
      'the crashed master replaced',
      async () => {
        const ws = await second.workers();
        return ws.length === 2 && ws.some((w) => w.id === crashed.data!.crashMaster.id && w.pid !== crashed.data!.crashMaster.pid) && ws.some((w) => w.role === 'MASTER');
      },
      30_000,
    );

    const acknowledged = [...onFirst.acknowledged, ...onSecond.acknowledged];
    expect(onSecond.acknowledged.length).toBeGreaterThan(0);
    await expectNothingLost(second, acknowledged, 11, 12);
    await events.close();
  });
});

describe('workers', () => {
  it('say which machine they run on', async () => {
    const { workers } = await second.data<{ workers: Array<{ host: string | null }> }>('{ workers { host } }');
    expect(workers.length).toBeGreaterThan(0);
    for (const w of workers) expect(w.host).toBe(os.hostname());
  });
});
