import type { Channel } from 'amqplib';
import type { ClusterNames } from '../schema/names';

/**
 * Declares the cluster's queues and exchanges. Gateway and workers both call this, with
 * identical arguments, so whichever starts first creates them.
 */
export async function assertTopology(channel: Channel, names: ClusterNames, logRetentionBytes: number): Promise<void> {
  // SyncQ: a fanout exchange into a stream queue, so the log is durable, ordered and can
  // be re-read from any offset by any number of workers. It is bounded: whole segments
  // past the retention are dropped, and a worker that needs them bootstraps from a
  // peer's snapshot instead (worker/snapshot.ts).
  await channel.assertExchange(names.syncExchange, 'fanout', { durable: true });
  await channel.assertQueue(names.syncLog, {
    durable: true,
    arguments: {
      'x-queue-type': 'stream',
      'x-max-length-bytes': logRetentionBytes,
      'x-stream-max-segment-size-bytes': Math.max(4096, Math.min(64 * 2 ** 20, Math.floor(logRetentionBytes / 4))),
    },
  });
  await channel.bindQueue(names.syncLog, names.syncExchange, '');

  // Reads are cheap to retry, so they are not persisted; each carries its own expiration.
  await channel.assertQueue(names.readQ, { durable: true });
  // One active consumer at a time: the elected master. A request stays queued until the
  // master acks it, so a write survives the master's crash and goes to its successor.
  await channel.assertQueue(names.writeQ, { durable: true, arguments: { 'x-single-active-consumer': true } });
  await channel.assertQueue(names.deadLetters, { durable: true });
  await channel.assertQueue(names.snapshotQ, { durable: false });
}
