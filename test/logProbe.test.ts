import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { clusterNames, encode, type WriteEntry } from '../schema';
import { assertTopology, connectBroker, loadConfig, readStreamFrom, streamOffsetOf } from '../platform';
import { logReachesBack } from '../worker/snapshot';
import { uniqueClusterName, waitUntil } from './support/cluster';

/**
 * Whether a worker can follow the log from its position or needs a snapshot, asked of a
 * real stream (SyncQ as the topology declares it, with a small retention so that its
 * oldest segments go).
 */
const config = loadConfig({ ...process.env, DBAAS_CLUSTER: uniqueClusterName(), LOG_RETENTION_BYTES: '20000' });
const names = clusterNames(config.cluster);
let connection: ChannelModel;
let channel: ConfirmChannel;

const entry = (seq: number): WriteEntry => ({
  kind: 'write',
  epoch: 1,
  seq,
  requestId: `r${seq}`,
  op: 'createUser',
  args: { username: `u${seq}`, pad: 'x'.repeat(200) },
  result: null,
});
/** One message per seq, at offset seq - 1. */
async function publish(from: number, to: number): Promise<void> {
  for (let seq = from; seq <= to; seq++) channel.publish(names.syncExchange, '', encode(entry(seq)));
  await channel.waitForConfirms();
}
/** The offset of the stream's first message now (seq - 1 of its entry). */
async function firstOffset(): Promise<number> {
  const reader = await connection.createChannel();
  await reader.prefetch(1);
  try {
    return await new Promise<number>((resolve, reject) => {
      reader.consume(names.syncLog, (msg) => msg && resolve(streamOffsetOf(msg)), readStreamFrom('first')).catch(reject);
    });
  } finally {
    await reader.close();
  }
}

beforeAll(async () => {
  connection = await connectBroker(config.amqpUrl, `${names.connectionPrefix}test log probe`);
  channel = await connection.createConfirmChannel();
  await assertTopology(channel, names, config);
});
afterAll(async () => {
  for (const q of [names.syncLog, names.readQ, names.writeQ, names.deadLetters, names.snapshotQ]) await channel?.deleteQueue(q);
  for (const x of [names.syncExchange]) await channel?.deleteExchange(x);
  await connection?.close();
});

describe('logReachesBack', () => {
  it('says yes on an empty stream (a new cluster) and from the stream’s first message', async () => {
    expect(await logReachesBack(connection, names.syncLog, 0, 0)).toBe(true);
    await publish(1, 5);
    expect(await logReachesBack(connection, names.syncLog, 0, 0)).toBe(true);
    // A worker that applied seq 3 (offsets 0-2) resumes at offset 3.
    expect(await logReachesBack(connection, names.syncLog, 3, 3)).toBe(true);
    // At the head: the message it applied last is still there.
    expect(await logReachesBack(connection, names.syncLog, 5, 5)).toBe(true);
  });

  it('says no once the entries after a worker’s position are gone, and yes for a position still kept', async () => {
    let seq = 5;
    await waitUntil(
      'the oldest segments dropped',
      async () => {
        await publish(seq + 1, seq + 50);
        seq += 50;
        return (await firstOffset()) > 10;
      },
      60_000,
    );
    const first = await firstOffset();
    // A new worker, and one that stopped at seq 3: what they need is gone.
    expect(await logReachesBack(connection, names.syncLog, 0, 0)).toBe(false);
    expect(await logReachesBack(connection, names.syncLog, 3, 3)).toBe(false);
    // A worker whose last applied message is the first one kept, and one at the head.
    expect(await logReachesBack(connection, names.syncLog, first + 1, first + 1)).toBe(true);
    expect(await logReachesBack(connection, names.syncLog, seq, seq)).toBe(true);
    // One whose last applied message went but whose next is the first kept (a seq matches).
    expect(await logReachesBack(connection, names.syncLog, first, first)).toBe(true);
    // A position saved past the dropped part (a worker that skipped it): the message before
    // its offset is kept, but holds writes it never applied.
    expect(await logReachesBack(connection, names.syncLog, first + 1, 0)).toBe(false);
  });
});
