import type { ChannelModel } from 'amqplib';
import { readStreamFrom, streamOffsetOf, type Logger } from '../platform';
import type { LogTail } from './logTail';
import type { Replica } from './replica';

/** Silence after which the stream, or this worker's tail of it, counts as at its end. */
const SILENCE_MS = 200;
/** The last chunk's messages come in one burst: a pause this long ends it. */
const BURST_PAUSE_MS = 20;
/** And no longer than this after its first: a master elected meanwhile may keep writing. */
const READ_AT_MOST_MS = 250;

/**
 * For a worker that starts while no master advertises its position (a whole new set of
 * workers after every one was lost, or one started during an election): applies the log
 * to its end before the worker joins ReadQ (docs/contract.md, guarantee 6). The end is
 * the offset of the last message (logEndOffset); when that probe hears nothing, the log
 * is empty or RabbitMQ's `last` chunk did not answer (seen right after a segment rolled
 * over), and the tail's own silence for SILENCE_MS ends the catch-up instead. Only a
 * broker or a database stalled longer than that mid-replay ends it early; reads at the
 * default consistency still wait for their gateway's floor then.
 */
export async function catchUpToLogEnd(connection: ChannelModel, streamQueue: string, replica: Replica, tail: LogTail, log: Logger): Promise<void> {
  const endOffset = await logEndOffset(connection, streamQueue);
  log.info({ from: replica.appliedSeq, endOffset }, 'no master: catching up to the end of the log');
  if (endOffset === null) return tail.quiet(SILENCE_MS);
  while (!(await replica.waitForOffset(endOffset, 1000))) log.info({ appliedSeq: replica.appliedSeq, streamOffset: replica.streamOffset, endOffset }, 'catching up');
}

/**
 * The offset of the log stream's last message now, read from RabbitMQ's `last` chunk (a
 * few messages, not the log), or null when nothing arrives within SILENCE_MS.
 */
export async function logEndOffset(connection: ChannelModel, streamQueue: string): Promise<number | null> {
  const channel = await connection.createChannel();
  await channel.prefetch(1000);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<number | null>((resolve, reject) => {
      let end: number | null = null;
      let firstAt: number | null = null;
      let settled = false;
      const settle = () => {
        settled = true;
        resolve(end);
      };
      channel
        .consume(
          streamQueue,
          (msg) => {
            if (!msg || settled) return;
            channel.ack(msg);
            end = Math.max(end ?? 0, streamOffsetOf(msg));
            firstAt ??= performance.now();
            clearTimeout(timer);
            timer = setTimeout(settle, Math.max(0, Math.min(BURST_PAUSE_MS, READ_AT_MOST_MS - (performance.now() - firstAt))));
          },
          readStreamFrom('last'),
        )
        .then(() => {
          if (firstAt === null) timer = setTimeout(settle, SILENCE_MS);
        }, reject);
    });
  } finally {
    clearTimeout(timer);
    await channel.close();
  }
}
