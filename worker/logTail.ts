import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { decode, entriesOf, logMessageSchema } from '../schema';
import { batchedAcks, readStreamFrom, streamOffsetOf, type Logger } from '../platform';
import type { OffsetEntry, Replica } from './replica';

/** Entries per transaction, about (a message's entries are never split). */
const MAX_BATCH = 2000;
/**
 * Flow control by entries, not messages: a message holds one master batch (one write when
 * idle, tens under load, at most 512; a large batch comes as several). Acknowledging a
 * stream message only grants the broker credit to send more (the worker's position is its
 * own, in its database), so a message is marked handled on arrival while fewer than
 * MAX_HELD entries (and MAX_HELD_BYTES) wait to be applied, and later otherwise
 * (acknowledged within ACK_EVERY messages or ACK_AFTER_MS); at most PREFETCH
 * unacknowledged messages (each at most worker/logMessages' 1 MiB) come on top.
 * That keeps the next batch arriving (and being decoded) while PostgreSQL applies the
 * current one, whatever the message size, and bounds the worker's memory: a prefetch of
 * 1,000 batched messages once put the whole 100k-entry log of bench:catchup in memory
 * (~240 MB peak).
 */
const MAX_HELD = 2 * MAX_BATCH;
/**
 * And by size: entries differ a thousandfold (a deleteUser lists up to MAX_LOGGED_RIDES
 * rows), and 4,000 large ones would be gigabytes against a worker's 256 MB heap. Counted
 * as the messages' encoded bytes; decoded they take a few times that. Ordinary entries
 * (~0.4 KB) reach MAX_HELD first, so this binds only on large ones.
 */
const MAX_HELD_BYTES = 16 * 2 ** 20;
const PREFETCH = 64;
/** Credit granted sixteen messages at a time, or 20 ms after the first (platform/batchedAcks). */
const ACK_EVERY = 16;
const ACK_AFTER_MS = 20;

export interface LogTail {
  stop(): Promise<void>;
}

/**
 * Reads SyncQ's log stream from this worker's saved offset and feeds the replica in
 * batches. Entries are applied strictly one batch after another, in stream order.
 * Each entry is decoded as it arrives, while the previous batch is in PostgreSQL, and
 * only the decoded entry is kept.
 */
export async function startLogTail(connection: ChannelModel, streamQueue: string, replica: Replica, log: Logger, onFatal: (err: Error) => void): Promise<LogTail> {
  const channel: Channel = await connection.createChannel();
  await channel.prefetch(PREFETCH);
  const acks = batchedAcks(channel, ACK_EVERY, ACK_AFTER_MS, log);
  // Batches in arrival order; the one being applied has left the queue, so new entries
  // go to a new batch.
  const queue: Array<{ entries: OffsetEntry[]; bytes: number }> = [];
  let draining: Promise<void> | null = null;
  let stopped = false;

  const fail = (err: Error) => {
    // A log we cannot decode or apply means this replica would diverge: stop rather than serve.
    stopped = true;
    onFatal(err);
  };

  let held = 0;
  let heldBytes = 0;
  const unacked: ConsumeMessage[] = [];
  const grantCredit = () => {
    while (unacked.length && held < MAX_HELD && heldBytes < MAX_HELD_BYTES) acks.done(unacked.shift()!);
  };

  const drainLoop = async () => {
    try {
      for (let batch = queue.shift(); batch && !stopped; batch = queue.shift()) {
        await replica.applyBatch(batch.entries);
        held -= batch.entries.length;
        heldBytes -= batch.bytes;
        grantCredit();
      }
    } catch (err) {
      fail(err as Error);
    } finally {
      draining = null;
    }
  };

  const { consumerTag } = await channel.consume(
    streamQueue,
    (msg) => {
      if (!msg) return fail(new Error('log stream consumer was cancelled by the broker'));
      if (stopped) return;
      let entries: OffsetEntry[];
      try {
        const offset = streamOffsetOf(msg);
        entries = entriesOf(decode(logMessageSchema, msg.content)).map((entry) => ({ entry, offset }));
      } catch (err) {
        return fail(err as Error);
      }
      let tail = queue.at(-1);
      if (!tail || tail.entries.length >= MAX_BATCH) queue.push((tail = { entries: [], bytes: 0 }));
      for (const entry of entries) tail.entries.push(entry);
      tail.bytes += msg.content.length;
      held += entries.length;
      heldBytes += msg.content.length;
      unacked.push(msg);
      grantCredit();
      draining ??= drainLoop();
    },
    readStreamFrom(replica.streamOffset),
  );
  log.info({ offset: replica.streamOffset, appliedSeq: replica.appliedSeq }, 'tailing the log');

  return {
    async stop() {
      stopped = true;
      await channel.cancel(consumerTag);
      await draining;
      await channel.close();
    },
  };
}
