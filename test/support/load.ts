import { decode, replyBatchSchema, type RpcReply } from '../../schema';
import { connectBroker } from '../../platform';
import { domainChecksums, waitUntil, type TestCluster } from './cluster';

export interface AcknowledgedRide {
  id: number;
  timestamp: string;
  /** When the client heard success (ms since epoch). */
  at: number;
}

/**
 * `writers` concurrent clients creating rides for `ms` milliseconds. Every attempt has its
 * own timestamp, so a write applied twice shows up as two rides with one timestamp.
 */
export async function writeRidesFor(
  cluster: TestCluster,
  opts: { createdBy: string; source: number; destination: number; ms: number; writers: number; epochYear: number },
): Promise<{ acknowledged: AcknowledgedRide[]; failed: number }> {
  const acknowledged: AcknowledgedRide[] = [];
  let failed = 0;
  let n = 0;
  const stopAt = Date.now() + opts.ms;
  const query = 'mutation($by: String!, $ts: DateTimeISO!, $s: Int!, $d: Int!) { createRide(createdBy: $by, timestamp: $ts, source: $s, destination: $d) { id timestamp } }';
  const writer = async () => {
    while (Date.now() < stopAt) {
      const ts = new Date(Date.UTC(opts.epochYear, 0, 1) + n++ * 1000).toISOString();
      // A gateway that dies with the request in flight is a failed write, not a test error.
      const res = await cluster
        .gql<{ createRide: { id: number; timestamp: string } }>(query, { by: opts.createdBy, ts, s: opts.source, d: opts.destination })
        .catch((err: Error) => {
          if ((err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED' || /fetch failed/.test(err.message)) return null;
          throw err;
        });
      if (res?.data?.createRide) acknowledged.push({ ...res.data.createRide, at: Date.now() });
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: opts.writers }, writer));
  return { acknowledged, failed };
}

/**
 * A bare AMQP client with its own reply queue, for tests that talk to the queues
 * directly (duplicate deliveries, malformed messages).
 */
export async function withRawRpc(
  cluster: TestCluster,
  test: (rpc: { channel: import('amqplib').Channel; replyQueue: string; replies: RpcReply[] }) => Promise<void>,
): Promise<void> {
  const connection = await connectBroker(cluster.config.amqpUrl, `${cluster.names.connectionPrefix}test raw rpc`);
  try {
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    const replies: RpcReply[] = [];
    await channel.consume(queue, (msg) => msg && replies.push(...decode(replyBatchSchema, msg.content).replies), { noAck: true });
    await test({ channel, replyQueue: queue, replies });
  } finally {
    await connection.close();
  }
}

/**
 * Every acknowledged ride of a route is stored exactly once (each attempt had its own
 * timestamp), and once two workers serve, their domain tables are identical.
 */
export async function expectNothingLost(cluster: TestCluster, acknowledged: AcknowledgedRide[], source: number, destination: number): Promise<void> {
  const rides = await cluster.allRides(source, destination, false);
  const stored = new Map(rides.map((r) => [r.id, r.timestamp]));
  for (const w of acknowledged) expect(stored.get(w.id)).toBe(w.timestamp);
  expect(new Set(rides.map((r) => r.timestamp)).size).toBe(rides.length);
  const workers = await waitUntil('two serving workers', async () => {
    const ws = await cluster.workers();
    return ws.length === 2 && ws.every((w) => w.role !== 'STARTING') ? ws : undefined;
  });
  await waitUntil('identical replicas', async () => {
    const sums = await Promise.all(workers.map((w) => domainChecksums(cluster.workerDatabaseUrl(w.id))));
    return sums.every((s) => JSON.stringify(s) === JSON.stringify(sums[0]));
  });
}
