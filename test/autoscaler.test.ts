import { targetSlaves } from '../gateway/autoscaler';
import { queryOne, sleep, TestCluster, waitUntil } from './support/cluster';
import { EventRecorder } from './support/events';

describe('the autoscaling rule', () => {
  const config = { readsPerSlave: 20, minSlaves: 1, maxSlaves: 8 };
  it('is clamp(ceil(reads / READS_PER_SLAVE), MIN, MAX)', () => {
    expect(targetSlaves(0, config)).toBe(1);
    expect(targetSlaves(20, config)).toBe(1);
    expect(targetSlaves(21, config)).toBe(2);
    expect(targetSlaves(75, config)).toBe(4);
    expect(targetSlaves(10_000, config)).toBe(8);
  });
});

describe('the autoscaler', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start({ SCALE_INTERVAL_SECONDS: '3', READS_PER_SLAVE: '10', MIN_SLAVES: '1', MAX_SLAVES: '3' });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('scales slaves up after a burst of reads and back down to MIN after silence', async () => {
    const recorder = new EventRecorder(cluster.url, ['SCALED_UP', 'SCALED_DOWN']);
    await recorder.connected();
    // 60 reads in one interval → ceil(60 / 10) = 6, clamped to MAX_SLAVES = 3.
    await Promise.all(Array.from({ length: 60 }, () => cluster.data('{ areas { id } }')));
    // Reads that straddle an interval's end can scale 1 → 2 first, then to 3.
    const up = await waitUntil('SCALED_UP to 3', async () => recorder.events.find((e) => e.type === 'SCALED_UP' && e.toSlaves === 3), 15_000);
    expect(up.fromSlaves).toBeLessThan(3);
    expect(up.reason).toMatch(/reads/);
    // The load goes on until the new slaves serve: a new worker may need longer than one
    // interval to start (more so on a busy machine), and silence would retire it first.
    let loaded = true;
    const load = (async () => {
      while (loaded) await Promise.all([sleep(500), ...Array.from({ length: 10 }, () => cluster.data('{ areas { id } }'))]);
    })();
    try {
      await waitUntil('three slaves', async () => (await cluster.workers()).filter((w) => w.role === 'SLAVE').length === 3, 30_000);
    } finally {
      loaded = false;
      await load;
    }

    // The last loaded interval may still ask for 2 slaves before silence asks for 1.
    const down = await waitUntil('SCALED_DOWN to 1', async () => recorder.events.find((e) => e.type === 'SCALED_DOWN' && e.toSlaves === 1), 30_000);
    expect(down.fromSlaves).toBeGreaterThan(1);
    expect(down.reason).toMatch(/reads/);
    const workers = await waitUntil(
      'one slave left',
      async () => {
        const ws = await cluster.workers();
        return ws.filter((w) => w.role === 'SLAVE').length === 1 ? ws : undefined;
      },
      30_000,
    );
    expect(workers.filter((w) => w.role === 'MASTER')).toHaveLength(1);
    const { cluster: c } = await cluster.data<{ cluster: { desiredSlaves: number } }>('{ cluster { desiredSlaves } }');
    expect(c.desiredSlaves).toBe(1);
    // The retired slaves' replicas are dropped; the live workers' remain.
    const databases = async () =>
      (await queryOne<{ n: number }>(cluster.config.databaseUrl, 'SELECT count(*)::int AS n FROM pg_database WHERE starts_with(datname, $1)', [cluster.names.workerDatabasePrefix]))
        .n;
    await waitUntil('retired databases dropped', async () => (await databases()) === 2, 15_000);
    await recorder.close();
  });
});
