import type { Channel, Message } from 'amqplib';
import type { Logger } from './logger';

export interface BatchedAcks {
  /** Marks `msg`, and every message delivered before it on the channel, as handled. */
  done(msg: Message): void;
  /** Acknowledges what is marked now. */
  flush(): void;
}

/**
 * Acknowledges a stream consumer's messages many to a frame: once `every` are marked, or
 * `afterMs` after the first of them, one acknowledgement with `multiple` covers them all.
 * On a stream an acknowledgement only grants the broker credit to send more (readers keep
 * their own positions), so a late one loses nothing; one frame per message, a socket write
 * and broker work each, was about a quarter of an idle gateway's CPU following the log
 * under write load. Messages must be marked in delivery order, and `every` kept well under
 * the channel's prefetch so that credit never runs out while acknowledgements wait.
 */
export function batchedAcks(channel: Channel, every: number, afterMs: number, log: Logger): BatchedAcks {
  let last: Message | null = null;
  let marked = 0;
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (!last) return;
    const msg = last;
    last = null;
    marked = 0;
    try {
      channel.ack(msg, true);
    } catch (err) {
      // amqplib's error for a channel closed meanwhile: the broker dropped its deliveries' credit with it.
      if ((err as Error).name === 'IllegalOperationError') log.debug({ err }, 'acknowledgement on a closed channel not sent');
      else log.warn({ err }, 'acknowledgement failed');
    }
  };
  return {
    done(msg) {
      last = msg;
      if (++marked >= every) flush();
      else timer ??= setTimeout(flush, afterMs).unref();
    },
    flush,
  };
}
