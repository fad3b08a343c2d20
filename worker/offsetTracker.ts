import type { ChannelModel } from 'amqplib';
import { decode, entriesOf, logMessageSchema } from '../schema';
import { batchedAcks, readStreamFrom, streamOffsetOf, type Logger } from '../platform';

/** Header the master puts on every `writes` message: the seq of its last entry. */
export const LAST_SEQ_HEADER = 'x-ridedb-last-seq';

export interface OffsetTracker {
  /** The stream offset just past every message holding nothing beyond `committedSeq`. */
  resumeOffset(committedSeq: number): number;
  stop(): Promise<void>;
}

/**
 * The master's place in the log stream. A master applies its writes itself and does not
 * tail the log, so it used to keep the offset it had when elected: restarted after a
 * crash, it re-read everything written since its election just to skip it (31 s at 2M
 * rides). This consumer follows the stream behind the master, reading only each
 * message's offset and last seq (a header the master sets; older messages and epoch
 * markers are decoded), so every batch can record an offset the restarted worker
 * resumes from, at most a few messages before the end.
 */
export function startOffsetTracker(connection: ChannelModel, streamQueue: string, fromOffset: number, log: Logger): OffsetTracker {
  // Messages seen and not yet known to be committed, in stream order.
  const pending: Array<{ offset: number; lastSeq: number }> = [];
  let safe = fromOffset;
  // Not waited for: the broker takes ~10 ms to attach a stream consumer, on a new master's
  // way to serving writes (bench:failover). Until messages arrive, resumeOffset answers
  // fromOffset (just past the master's own epoch marker, where its tail stopped), which
  // is past nothing beyond any seq committed from then on.
  const attached = (async () => {
    const channel = await connection.createChannel();
    await channel.prefetch(1000);
    // Credit granted a hundred messages at a time (platform/batchedAcks).
    const acks = batchedAcks(channel, 100, 50, log);
    const { consumerTag } = await channel.consume(
      streamQueue,
      (msg) => {
        if (!msg) return;
        const offset = streamOffsetOf(msg);
        let lastSeq = Number(msg.properties.headers?.[LAST_SEQ_HEADER]);
        if (!Number.isSafeInteger(lastSeq)) {
          try {
            lastSeq = Math.max(0, ...entriesOf(decode(logMessageSchema, msg.content)).map((e) => (e.kind === 'write' ? e.seq : 0)));
          } catch (err) {
            // Replicas refuse such a message too; here it only keeps the offset where it is.
            log.warn({ err, offset }, 'undecodable log message; the resume offset stays before it');
            lastSeq = Number.MAX_SAFE_INTEGER;
          }
        }
        pending.push({ offset, lastSeq });
        acks.done(msg);
      },
      readStreamFrom(fromOffset),
    );
    return { channel, consumerTag };
  })();
  // Not worth a failover: the offset only shortens a restart's replay.
  attached.catch((err: Error) => log.error({ err, fromOffset }, 'the log offset tracker could not attach; batches record the offset this master started at'));
  return {
    resumeOffset(committedSeq) {
      while (pending.length && pending[0].lastSeq <= committedSeq) safe = pending.shift()!.offset + 1;
      return safe;
    },
    async stop() {
      const { channel, consumerTag } = await attached;
      await channel.cancel(consumerTag);
      await channel.close();
    },
  };
}
