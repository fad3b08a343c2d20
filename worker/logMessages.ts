import type { ConfirmChannel } from 'amqplib';
import { encode, type WriteEntry } from '../schema';
import { LAST_SEQ_HEADER } from './offsetTracker';

/**
 * The most a master puts in one log message. A batch holds up to 512 writes, and some
 * entries are large (a deleteUser lists up to MAX_LOGGED_RIDES rows, ~0.7 MB with long
 * names), so one message per batch could pass RabbitMQ's limit (128 MB on 3.x, 16 MiB by
 * default from 4.0): the broker would refuse it, the master stop, and its successor take
 * the same writes again. Every reader holds whole messages decoded (a replica's log tail up
 * to 64 unacknowledged ones), so smaller is kinder to their heaps too; 1 MiB still holds a
 * full batch of 512 ordinary writes (~0.4 KB each).
 */
export const MAX_LOG_MESSAGE_BYTES = 2 ** 20;

/**
 * A batch's entries as the log messages that carry them, in seq order: one (encoded
 * once) in the usual case, split in halves until each fits. An entry larger than the
 * bound goes alone.
 */
export function logMessagesOf(entries: readonly WriteEntry[], maxBytes = MAX_LOG_MESSAGE_BYTES): Array<{ body: Buffer; lastSeq: number }> {
  const body = encode({ kind: 'writes', entries });
  if (body.length <= maxBytes || entries.length === 1) return [{ body, lastSeq: entries[entries.length - 1].seq }];
  const half = Math.ceil(entries.length / 2);
  return [...logMessagesOf(entries.slice(0, half), maxBytes), ...logMessagesOf(entries.slice(half), maxBytes)];
}

/** One log message, confirmed; `lastSeq` (its last write's) lets the offset tracker skip decoding it. */
export function publishBody(channel: ConfirmChannel, exchange: string, body: Buffer, lastSeq: number | undefined): Promise<void> {
  const headers = lastSeq === undefined ? undefined : { [LAST_SEQ_HEADER]: lastSeq };
  return new Promise((resolve, reject) => {
    channel.publish(exchange, '', body, { persistent: true, contentType: 'application/json', headers }, (err) =>
      err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
    );
  });
}
