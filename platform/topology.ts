import type { Channel, ConsumeMessage, Options } from 'amqplib';
import type { ClusterNames } from '../schema/names';

export interface QueueSettings {
  /** Size bound of SyncQ's stream. */
  logRetentionBytes: number;
  /** RabbitMQ nodes holding each durable queue: 1 classic queues; ≥ 2 quorum queues and a replicated stream. */
  queueReplicas: number;
}

/** The queue arguments for each durable queue, by QUEUE_REPLICAS (pure, so unit-tested). */
export function queueArguments(names: ClusterNames, settings: QueueSettings): Array<{ queue: string; arguments: Record<string, unknown> }> {
  const { logRetentionBytes, queueReplicas } = settings;
  const replicated = queueReplicas > 1;
  // Quorum queues keep every message on a majority of `queueReplicas` nodes (Raft), so a
  // node's loss loses no queued write and leaves the queue usable; a classic queue lives
  // on one node and is unusable while that node is down.
  const quorum = replicated ? { 'x-queue-type': 'quorum', 'x-quorum-initial-group-size': queueReplicas } : {};
  return [
    // SyncQ: a fanout exchange into a stream queue, so the log is durable, ordered and can
    // be re-read from any offset by any number of workers. It is bounded: whole segments
    // past the retention are dropped, and a worker that needs them bootstraps from a
    // peer's snapshot instead (worker/snapshot.ts). Replicated, the master's publisher
    // confirm means a majority of the stream's nodes hold the entry.
    {
      queue: names.syncLog,
      arguments: {
        'x-queue-type': 'stream',
        'x-max-length-bytes': logRetentionBytes,
        'x-stream-max-segment-size-bytes': Math.max(4096, Math.min(64 * 2 ** 20, Math.floor(logRetentionBytes / 4))),
        ...(replicated ? { 'x-initial-cluster-size': queueReplicas } : {}),
      },
    },
    // Reads are cheap to retry; on one node they are not persisted. Each carries its own expiration.
    { queue: names.readQ, arguments: { ...quorum } },
    // One active consumer at a time: the elected master. A request stays queued until the
    // master acks it, so a write survives the master's crash and goes to its successor.
    { queue: names.writeQ, arguments: { ...quorum, 'x-single-active-consumer': true } },
    { queue: names.deadLetters, arguments: { ...quorum } },
  ];
}

/**
 * Declares the cluster's queues and exchanges. Gateway and workers both call this, with
 * identical arguments, so whichever starts first creates them. RabbitMQ refuses to
 * redeclare a queue with other arguments (PRECONDITION_FAILED), so QUEUE_REPLICAS is fixed
 * when a cluster's queues are first declared; the error says so.
 */
export async function assertTopology(channel: Channel, names: ClusterNames, settings: QueueSettings): Promise<void> {
  await channel.assertExchange(names.syncExchange, 'fanout', { durable: true });
  for (const { queue, arguments: args } of queueArguments(names, settings)) {
    try {
      await channel.assertQueue(queue, { durable: true, arguments: args });
    } catch (err) {
      const message = (err as Error).message;
      if (!/PRECONDITION.FAILED/.test(message)) throw err;
      throw new Error(
        `queue ${queue} exists with other arguments than QUEUE_REPLICAS=${settings.queueReplicas} (and LOG_RETENTION_BYTES) ask for: ` +
          `a cluster's queue types are fixed when it is created. Keep the setting it was created with, or remove the cluster ` +
          `(npm run cluster:destroy) and start again. RabbitMQ said: ${message}`,
      );
    }
  }
  await channel.bindQueue(names.syncLog, names.syncExchange, '');
  await channel.assertQueue(names.snapshotQ, { durable: false });
}

export type StreamStart = number | 'first' | { '!': 'timestamp'; value: number };

/** Consumer options that read a stream queue (SyncQ's log) from `start` on (an offset, the first kept, or a time in seconds), acknowledging as they go. */
export const readStreamFrom = (start: StreamStart): Options.Consume => ({ noAck: false, arguments: { 'x-stream-offset': start } });

/** The stream offset RabbitMQ delivered a message from. */
export const streamOffsetOf = (msg: ConsumeMessage): number => Number(msg.properties.headers?.['x-stream-offset']);
