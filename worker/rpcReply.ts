import type { Channel, ConsumeMessage } from 'amqplib';
import { DbaasError, encode, MalformedMessageError, type Logger, type RpcReply } from '../schema';

/** Sends a reply to the gateway that asked, matched by its correlation id. */
export function reply(channel: Channel, request: ConsumeMessage, body: RpcReply): void {
  const { replyTo, correlationId } = request.properties;
  if (!replyTo) return;
  channel.sendToQueue(replyTo, encode(body), { correlationId, contentType: 'application/json' });
}

/**
 * Parks a request no worker can decode in the dead-letter queue with the reason, instead
 * of dropping it or letting it be redelivered forever.
 */
export function deadLetter(channel: Channel, deadLetters: string, request: ConsumeMessage, reason: string, workerId: string): void {
  channel.sendToQueue(deadLetters, request.content, {
    persistent: true,
    headers: { 'x-reason': reason, 'x-original-queue': request.fields.routingKey, 'x-worker': workerId, 'x-dead-at': new Date().toISOString() },
  });
}

/** Maps any failure to the reply error shape; internals are logged, never sent. */
export function errorReply(err: unknown, workerId: string, appliedSeq: number, log: Logger): RpcReply {
  if (err instanceof DbaasError) return { ok: false, workerId, appliedSeq, error: { code: err.code, message: err.message } };
  if (err instanceof MalformedMessageError) {
    return { ok: false, workerId, appliedSeq, error: { code: 'BAD_USER_INPUT', message: `malformed request: ${err.message}` } };
  }
  // PostgreSQL going away (connection errors, admin shutdown, recovery): retryable.
  const pgCode = (err as { code?: string }).code ?? '';
  if (pgCode.startsWith('08') || pgCode.startsWith('57P') || pgCode === 'ECONNREFUSED' || pgCode === 'ECONNRESET') {
    log.warn({ err }, 'database unavailable');
    return { ok: false, workerId, appliedSeq, error: { code: 'UNAVAILABLE', message: 'the database is unavailable' } };
  }
  log.error({ err }, 'request failed');
  return { ok: false, workerId, appliedSeq, error: { code: 'INTERNAL_SERVER_ERROR', message: 'internal error' } };
}
