import { sleep, TestCluster, waitUntil } from './support/cluster';
import { EventRecorder } from './support/events';

interface ClusterState {
  desiredSlaves: number;
  scalingMode?: string;
}

describe('a manual slave target', () => {
  let cluster: TestCluster;
  let recorder: EventRecorder | undefined;
  let reading = false;
  let readLoop: Promise<void> = Promise.resolve();
  let served = 0;

  beforeAll(async () => {
    // An autoscaler that runs every second and, for the reads below, wants one slave.
    cluster = await TestCluster.start({ SCALE_INTERVAL_SECONDS: '1', READS_PER_SLAVE: '1000', MIN_SLAVES: '1', MAX_SLAVES: '3' });
  });
  afterAll(async () => {
    reading = false;
    await readLoop;
    await recorder?.close();
    await cluster?.stop();
  });

  const slaveCount = async () => (await cluster.workers()).filter((w) => w.role === 'SLAVE').length;
  const state = async (selection = 'desiredSlaves scalingMode') => (await cluster.data<{ cluster: ClusterState }>(`{ cluster { ${selection} } }`)).cluster;

  it('holds through several autoscaler intervals with reads flowing, until scaleSlaves(count: null)', async () => {
    recorder = new EventRecorder(cluster.url, ['SCALED_UP', 'SCALED_DOWN']);
    await recorder.connected();
    // Reads keep the autoscaler ticking (it starts with the first read), about ten per interval.
    reading = true;
    readLoop = (async () => {
      while (reading) {
        if (!(await cluster.gql('{ areas { id } }')).errors) served++;
        await sleep(100);
      }
    })();
    await sleep(1500);

    // Only fields that exist before scaling modes, so that today's behaviour is what fails.
    const scaled = await cluster.admin<{ scaleSlaves: ClusterState }>('mutation { scaleSlaves(count: 2) { desiredSlaves } }');
    expect(scaled.errors).toBeUndefined();
    expect(scaled.data?.scaleSlaves.desiredSlaves).toBe(2);
    await waitUntil('two slaves', async () => (await slaveCount()) === 2, 30_000);
    const servedBefore = served;
    await sleep(5000); // five autoscaler intervals
    expect(served - servedBefore).toBeGreaterThan(10);
    expect((await state('desiredSlaves')).desiredSlaves).toBe(2);
    expect(await slaveCount()).toBe(2);
    expect(recorder.events.filter((e) => e.type === 'SCALED_DOWN')).toEqual([]);
    expect(recorder.events).toEqual([expect.objectContaining({ type: 'SCALED_UP', fromSlaves: 1, toSlaves: 2, reason: 'manual scaleSlaves' })]);
    expect(await state()).toEqual({ desiredSlaves: 2, scalingMode: 'MANUAL' });

    // A refused target changes nothing, and an omitted count is not taken for null.
    for (const call of ['scaleSlaves(count: 9)', 'scaleSlaves']) {
      const refused = await cluster.admin(`mutation { ${call} { desiredSlaves } }`);
      expect(refused.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    }
    expect(await state()).toEqual({ desiredSlaves: 2, scalingMode: 'MANUAL' });

    const resumed = await cluster.admin<{ scaleSlaves: ClusterState }>('mutation($n: Int) { scaleSlaves(count: $n) { desiredSlaves scalingMode } }', { n: null });
    expect(resumed.errors).toBeUndefined();
    // The target stays until the autoscaler's next run, which sizes the slaves by the reads.
    expect(resumed.data?.scaleSlaves).toEqual({ desiredSlaves: 2, scalingMode: 'AUTOMATIC' });
    const down = await waitUntil('the autoscaler scaling down', async () => recorder!.events.find((e) => e.type === 'SCALED_DOWN'), 15_000);
    expect(down).toMatchObject({ fromSlaves: 2, toSlaves: 1, reason: expect.stringMatching(/reads in the last 1s/) });
    await waitUntil('one slave', async () => (await slaveCount()) === 1, 30_000);
    expect(await state()).toEqual({ desiredSlaves: 1, scalingMode: 'AUTOMATIC' });
  });
});
