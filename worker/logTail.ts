import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { decode, logEntrySchema, type Logger } from '../schema';
import type { OffsetEntry, Replica } from './replica';

const PREFETCH = 4000;
const MAX_BATCH = 2000;

export interface LogTail {
  stop(): Promise<void>;
}

/**
 * Reads SyncQ's log stream from this worker's saved offset and feeds the replica in
 * batches. Entries are applied strictly one batch after another, in stream order.
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
  let buffer: ConsumeMessage[] = [];
  let draining: Promise<void> | null = null;
  let stopped = false;

  const drainLoop = async () => {
    try {
      while (buffer.length && !stopped) {
        const taken = buffer.slice(0, MAX_BATCH);
        buffer = buffer.slice(taken.length);
        const batch: OffsetEntry[] = taken.map((msg) => ({
          entry: decode(logEntrySchema, msg.content),
          offset: Number(msg.properties.headers?.['x-stream-offset']),
        }));
        await replica.applyBatch(batch);
        channel.ack(taken[taken.length - 1], true);
      }
    } catch (err) {
      // A log we cannot apply means this replica would diverge: stop rather than serve.
      onFatal(err as Error);
    } finally {
      draining = null;
    }
  };
  const drain = () => {
    draining ??= drainLoop();
  };

  const { consumerTag } = await channel.consume(
    streamQueue,
    (msg) => {
      if (!msg) return onFatal(new Error('log stream consumer was cancelled by the broker'));
      buffer.push(msg);
      drain();
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
