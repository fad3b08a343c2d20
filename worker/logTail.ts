import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { decode, entriesOf, logMessageSchema, type Logger } from '../schema';
import type { OffsetEntry, Replica } from './replica';

/** Entries per transaction, about (a message's entries are never split). */
const MAX_BATCH = 2000;
/**
 * Unacknowledged messages the broker may send ahead, so the next batch arrives (and is
 * decoded) while PostgreSQL applies the current one. A message holds one master batch
 * (tens of writes under load, at most 512), and every entry in flight is worker memory:
 * with 1,000 the whole 100k-entry log of bench:catchup (~128 entries a message) was in
 * flight at once and the worker peaked at ~240 MB. 64 keeps a few thousand entries ahead
 * (32k at most); a log of single-entry messages (written before batching) replays in
 * smaller transactions.
 */
const PREFETCH = 64;

export interface LogTail {
  stop(): Promise<void>;
}

/**
 * Reads SyncQ's log stream from this worker's saved offset and feeds the replica in
 * batches. Entries are applied strictly one batch after another, in stream order.
 * Each entry is decoded as it arrives, while the previous batch is in PostgreSQL, and
 * only the decoded entry is kept (plus the batch's last message, to acknowledge it).
 */
export async function startLogTail(
  connection: ChannelModel,
  streamQueue: string,
  replica: Replica,
  log: Logger,
  onFatal: (err: Error) => void,
): Promise<LogTail> {
  const channel: Channel = await connection.createChannel();
  await channel.prefetch(PREFETCH);
  // Batches in arrival order; the one being applied has left the queue, so new entries
  // go to a new batch. Each keeps its last message, to acknowledge exactly its entries.
  const queue: Array<{ entries: OffsetEntry[]; last: ConsumeMessage }> = [];
  let draining: Promise<void> | null = null;
  let stopped = false;

  const fail = (err: Error) => {
    // A log we cannot decode or apply means this replica would diverge: stop rather than serve.
    stopped = true;
    onFatal(err);
  };

  const drainLoop = async () => {
    try {
      for (let batch = queue.shift(); batch && !stopped; batch = queue.shift()) {
        await replica.applyBatch(batch.entries);
        channel.ack(batch.last, true);
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
        const offset = Number(msg.properties.headers?.['x-stream-offset']);
        entries = entriesOf(decode(logMessageSchema, msg.content)).map((entry) => ({ entry, offset }));
      } catch (err) {
        return fail(err as Error);
      }
      let tail = queue.at(-1);
      if (!tail || tail.entries.length >= MAX_BATCH) queue.push((tail = { entries: [], last: msg }));
      for (const entry of entries) tail.entries.push(entry);
      tail.last = msg;
      draining ??= drainLoop();
    },
    { noAck: false, arguments: { 'x-stream-offset': replica.streamOffset } },
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
