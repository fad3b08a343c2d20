import { RpcClient } from '../gateway/rpcClient';
import { createLogger } from '../platform';
import { PASSWORD, TestCluster, waitUntil } from './support/cluster';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start();
});
afterAll(async () => {
  await cluster?.stop();
});

async function metrics(): Promise<string> {
  const res = await fetch(`${cluster.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/text\/plain/);
  return res.text();
}

/** The value of one series, 0 when absent. */
function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe('/metrics', () => {
  it('exposes workers by role, replication lag and the epoch', async () => {
    const text = await metrics();
    expect(value(text, 'ridedb_workers{role="MASTER"}')).toBe(1);
    expect(value(text, 'ridedb_workers{role="SLAVE"}')).toBe(1);
    expect(text).toMatch(/^ridedb_replication_lag_entries\{worker="[a-z0-9_]+",role="SLAVE"\} \d+$/m);
    expect(value(text, 'ridedb_epoch')).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^ridedb_elections_total \d+$/m);
    // No read has timed out in a healthy cluster (the series appears at its first).
    expect(value(text, 'ridedb_rpc_timeouts_total{kind="read"}')).toBe(0);
  });

  it('counts elections and scaling changes as they happen', async () => {
    const before = await metrics();
    await cluster.admin('mutation { scaleSlaves(count: 2) { epoch } }');
    await cluster.admin('mutation { crashMaster { id } }');
    // They reach this gateway through ZooKeeper watches, in either order.
    const after = await waitUntil('the new master and the new target counted', async () => {
      const text = await metrics();
      const moved = (series: string) => value(text, series) > value(before, series);
      return moved('ridedb_epoch') && moved('ridedb_elections_total') && moved('ridedb_scaling_events_total{direction="up"}') ? text : undefined;
    });
    const delta = (series: string) => value(after, series) - value(before, series);
    expect(delta('ridedb_scaling_events_total{direction="up"}')).toBe(1);
    expect(delta('ridedb_elections_total')).toBe(1);
    expect(value(after, 'ridedb_epoch')).toBe(value(before, 'ridedb_epoch') + 1);
    await cluster.admin('mutation { scaleSlaves(count: 1) { epoch } }');
  });

  it('counts a read and a write by operation and outcome, with their RPC latency', async () => {
    const before = await metrics();
    await cluster.data('{ areas { id } }');
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'metered', p: PASSWORD });
    await cluster.gql('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'metered', p: PASSWORD });
    await fetch(`${cluster.url}/api/v1/rides/count`);
    const after = await metrics();

    const delta = (series: string) => value(after, series) - value(before, series);
    expect(delta('ridedb_requests_total{api="graphql",operation="areas",outcome="ok"}')).toBe(1);
    expect(delta('ridedb_requests_total{api="graphql",operation="createUser",outcome="ok"}')).toBe(1);
    expect(delta('ridedb_requests_total{api="graphql",operation="createUser",outcome="CONFLICT"}')).toBe(1);
    expect(delta('ridedb_requests_total{api="rest",operation="GET /rides/count",outcome="ok"}')).toBe(1);
    expect(delta('ridedb_rpc_duration_seconds_count{kind="read",op="areas"}')).toBe(1);
    expect(delta('ridedb_rpc_duration_seconds_count{kind="write",op="createUser"}')).toBe(2);
  });

  it('sends the reads asked in one turn as one message, each answered on its own', async () => {
    const rpc = await RpcClient.connect(cluster.config.amqpUrl, cluster.names, 'batchtest', cluster.config, createLogger('silent', {}));
    try {
      const sizes: number[] = [];
      rpc.onBatch = (kind, size) => sizes.push(size);
      const asked = Array.from({ length: 50 }, (_, i) => rpc.read('ride', { id: 1_000_000 + i }, { minSeq: 0, consistency: 'strong' }));
      const answers = await Promise.all(asked);
      expect(answers.map((a) => a.result)).toEqual(Array(50).fill(null));
      expect(sizes).toEqual([50]);
    } finally {
      await rpc.close();
    }
    // The gateway's own histogram: every read it sends is in one message (how many reads
    // share one depends on how the requests arrive, so only the bounds are fixed).
    const before = await metrics();
    await Promise.all(Array.from({ length: 20 }, (_, i) => cluster.data(`{ ride(id: ${2_000_000 + i}) { id } }`)));
    const after = await metrics();
    const delta = (series: string) => value(after, series) - value(before, series);
    const messages = delta('ridedb_rpc_batch_size_count{kind="read"}');
    expect(delta('ridedb_rpc_batch_size_sum{kind="read"}')).toBe(20);
    expect(messages).toBeGreaterThanOrEqual(1);
    expect(messages).toBeLessThanOrEqual(20);
  });
});
