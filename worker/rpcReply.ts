import type { Channel, ConsumeMessage } from 'amqplib';
import { DbaasError, encode, MalformedMessageError, type RpcReply } from '../schema';
import { type Logger } from '../platform';

/** Replies for one gateway travel together up to this size. */
export const REPLIES_MESSAGE_BYTES = 4 * 2 ** 20;
/**
 * The largest reply message sent; a reply past it goes as an error instead. RabbitMQ 4
 * refuses messages over 16 MiB by default by closing the channel, which would stop the
 * worker, and the request, unacknowledged, would stop every worker it went to next.
 * MAX_ANSWER_BYTES (8 MiB by default) keeps answers under it; this holds for any setting.
 */
export const MAX_REPLY_MESSAGE_BYTES = 15 * 2 ** 20;

/**
 * Sends answers to the gateways that asked, and acknowledges the requests they answer
 * after them. Answers for one gateway finished in the same turn of the event loop travel
 * as one message (schema/messages.ts says why).
 *
 * The acknowledgement goes after the replies, on the same channel, so the broker never
 * holds the one without the other: a worker that dies (or freezes and is killed) between
 * an ack and its replies would leave its requests answered by no one until the gateway's
 * READ_TIMEOUT_MS or WRITE_TIMEOUT_MS, where unacknowledged they go to another worker
 * (test/fencing.test.ts once saw four reads of a frozen slave time out so).
 */
export class ReplySender {
  private pending = new Map<string, RpcReply[]>();
  private acks: Array<{ msg: ConsumeMessage; allUpTo: boolean }> = [];
  private scheduled = false;

  constructor(
    private readonly channel: Channel,
    private readonly log: Logger,
  ) {}

  send(replyTo: string | undefined, reply: RpcReply): void {
    if (!replyTo) return; // nobody asked for an answer
    const list = this.pending.get(replyTo);
    if (list) list.push(reply);
    else this.pending.set(replyTo, [reply]);
    this.schedule();
  }

  /** Acknowledges `msg` (with `allUpTo`, every delivery before it too) once the replies sent so far are out. */
  ack(msg: ConsumeMessage, allUpTo = false): void {
    this.acks.push({ msg, allUpTo });
    this.schedule();
  }

  flush(): void {
    this.scheduled = false;
    for (const [replyTo, replies] of this.pending) {
      try {
        for (const message of replyMessages(replies)) this.channel.sendToQueue(replyTo, message, { contentType: 'application/json' });
      } catch (err) {
        // The channel closed under us (shutdown, broker loss): the gateway times these out.
        this.log.warn({ err, replyTo, replies: replies.length }, 'could not send replies');
      }
    }
    this.pending.clear();
    const acks = this.acks;
    this.acks = [];
    try {
      for (const { msg, allUpTo } of acks) this.channel.ack(msg, allUpTo);
    } catch (err) {
      // The same closed channel: the broker gives its unacknowledged requests to another worker.
      this.log.warn({ err, acks: acks.length }, 'could not acknowledge requests');
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }
}

/**
 * The messages that carry one gateway's replies: one, unless together they pass
 * REPLIES_MESSAGE_BYTES; then one a reply, since several large answers together could pass
 * the broker's message limit (16 MiB by default on RabbitMQ 4), which closes the channel.
 */
export function replyMessages(replies: RpcReply[]): Buffer[] {
  const together = encode({ replies });
  if (together.length <= REPLIES_MESSAGE_BYTES) return [together];
  return replies.map((reply) => {
    const alone = replies.length > 1 ? encode({ replies: [reply] }) : together;
    return alone.length <= MAX_REPLY_MESSAGE_BYTES ? alone : encode({ replies: [replyTooLarge(reply, alone.length)] });
  });
}

/** What a reply past MAX_REPLY_MESSAGE_BYTES is sent as. */
const replyTooLarge = ({ id, workerId, appliedSeq }: RpcReply, bytes: number): RpcReply => ({
  id,
  ok: false,
  workerId,
  appliedSeq,
  error: {
    code: 'BAD_USER_INPUT',
    message: `the answer (${bytes} bytes as a message) is larger than a reply may be (${MAX_REPLY_MESSAGE_BYTES}); lower MAX_ANSWER_BYTES, or ask for smaller pages (first) or fewer fields`,
  },
});

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

/**
 * The ids to answer an undecodable batch under, so no gateway waits out its timeout: the
 * ids of its requests where they can still be read (`field` of each element of `list`),
 * else the message's AMQP correlation id.
 */
export function idsToAnswer(msg: ConsumeMessage, list: 'reads' | 'writes', field: 'id' | 'requestId'): string[] {
  let ids: string[] = [];
  try {
    const body = JSON.parse(msg.content.toString('utf8')) as Record<string, unknown>;
    const items = Array.isArray(body?.[list]) ? (body[list] as unknown[]) : [];
    ids = items.map((item) => (item as Record<string, unknown> | null)?.[field]).filter((id): id is string => typeof id === 'string');
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err; // not JSON at all: only the correlation id is left
  }
  if (ids.length) return ids;
  return [typeof msg.properties.correlationId === 'string' ? msg.properties.correlationId : ''];
}

/** PostgreSQL going away (connection errors, admin shutdown, recovery): retryable. */
export function isDatabaseUnavailable(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code.startsWith('08') || code.startsWith('57P') || code === 'ECONNREFUSED' || code === 'ECONNRESET';
}

/** Maps any failure to the reply error shape; internals are logged, never sent. */
export function errorReply(err: unknown, id: string, workerId: string, appliedSeq: number, log: Logger): RpcReply {
  if (err instanceof DbaasError) return { id, ok: false, workerId, appliedSeq, error: { code: err.code, message: err.message } };
  if (err instanceof MalformedMessageError) {
    return { id, ok: false, workerId, appliedSeq, error: { code: 'BAD_USER_INPUT', message: `malformed request: ${err.message}` } };
  }
  if (isDatabaseUnavailable(err)) {
    log.warn({ err }, 'database unavailable');
    return { id, ok: false, workerId, appliedSeq, error: { code: 'UNAVAILABLE', message: 'the database is unavailable' } };
  }
  log.error({ err }, 'request failed');
  return { id, ok: false, workerId, appliedSeq, error: { code: 'INTERNAL_SERVER_ERROR', message: 'internal error' } };
}
