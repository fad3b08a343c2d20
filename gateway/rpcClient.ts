import { randomUUID } from 'node:crypto';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import {
  DbaasError,
  decode,
  encode,
  MAX_RPC_BATCH,
  replyBatchSchema,
  unavailable,
  type ClusterNames,
  type ReadArgs,
  type ReadOpName,
  type ReadResult,
  type ReadRequest,
  type RpcReply,
  type WriteRequest,
  type WriteArgs,
  type WriteOpName,
  type WriteResult,
} from '../schema';
import { assertTopology, connectBroker, reconnectDelayMs, type Logger, type QueueSettings } from '../platform';

export interface ReadOptions {
  minSeq: number;
  consistency: 'strong' | 'eventual';
}

export interface ReadAnswer<R> {
  result: R;
  workerId: string;
}

/** A write's identity when the client chose it (Idempotency-Key); else the gateway picks a UUID. */
export interface WriteIdentity {
  requestId: string;
  fingerprint: string;
}

export interface WriteAnswer<R> {
  result: R;
  workerId: string;
  seq: number;
}

interface Pending {
  resolve(reply: RpcReply): void;
  timer: NodeJS.Timeout;
}

const LAG_RETRY_DELAY_MS = 5;

interface BrokerLink {
  connection: ChannelModel;
  /** Reads, and the reply queue. Confirmed too: a refused read is known at once. */
  publishChannel: ConfirmChannel;
  writeChannel: ConfirmChannel;
}

/** A failure the gateway decides itself, for the request `id`. */
const unavailableReply = (id: string, message: string): RpcReply => ({ id, ok: false, workerId: '', appliedSeq: 0, error: { code: 'UNAVAILABLE', message } });

/**
 * The gateway's side of the RPCs: one AMQP connection, long-lived channels, one reply
 * queue per gateway, replies matched by request id. Requests made in one turn of the
 * event loop leave as one message per queue (schema/messages.ts says why). If the broker
 * goes away, requests in flight fail with UNAVAILABLE at once and the client reconnects
 * with bounded backoff.
 */
/** READ_TIMEOUT_MS, WRITE_TIMEOUT_MS, and the queue settings for declaring the topology. */
export interface RpcSettings extends QueueSettings {
  readTimeoutMs: number;
  writeTimeoutMs: number;
}

export class RpcClient {
  private pending = new Map<string, Pending>();
  /** Client-keyed writes in flight, to queue a retry of the same key behind them. */
  private pendingKeys = new Map<string, Promise<void>>();
  private readsOut: Array<{ request: ReadRequest; deadline: number }> = [];
  private writesOut: WriteRequest[] = [];
  private flushScheduled = false;
  private reconnecting = false;
  private link: BrokerLink | null = null;
  private closing = false;
  /** Highest seq this gateway saw committed: the floor for read-your-writes. */
  lastSeq = 0;
  /** Told the size of every batch sent (the gateway's metrics). */
  onBatch?: (kind: 'read' | 'write', size: number) => void;

  private constructor(
    private readonly amqpUrl: string,
    private readonly replyQueue: string,
    private readonly connectionName: string,
    private readonly names: ClusterNames,
    private readonly settings: RpcSettings,
    private readonly log: Logger,
  ) {}

  static async connect(amqpUrl: string, names: ClusterNames, gatewayId: string, settings: RpcSettings, log: Logger): Promise<RpcClient> {
    const client = new RpcClient(amqpUrl, names.responseQ(gatewayId), names.gatewayConnection(gatewayId, 'rpc'), names, settings, log);
    await client.open();
    return client;
  }

  private async open(): Promise<void> {
    const connection = await connectBroker(this.amqpUrl, this.connectionName);
    connection.on('error', (err: Error) => this.log.error({ err }, 'AMQP connection error'));
    let link: BrokerLink;
    try {
      const publishChannel = await connection.createConfirmChannel();
      await assertTopology(publishChannel, this.names, this.settings);
      const writeChannel = await connection.createConfirmChannel();
      await publishChannel.assertQueue(this.replyQueue, { exclusive: true, autoDelete: true, durable: false });
      await publishChannel.consume(this.replyQueue, (msg) => msg && this.deliver(msg.content), { noAck: true });
      link = { connection, publishChannel, writeChannel };
    } catch (err) {
      // Half open (the broker refused a declaration): this connection must not linger, or
      // it would keep this gateway's exclusive reply queue locked against the next try.
      await connection.close().catch((closeErr: Error) => this.log.warn({ err: closeErr }, 'could not close a half-opened broker connection'));
      throw err;
    }
    // A channel the broker closed leaves the link useless.
    link.publishChannel.on('close', () => this.drop(link));
    link.writeChannel.on('close', () => this.drop(link));
    connection.on('close', () => this.lost(link));
    this.link = link;
  }

  private deliver(content: Buffer): void {
    let replies: RpcReply[];
    try {
      replies = decode(replyBatchSchema, content).replies;
    } catch (err) {
      this.log.error({ err }, 'malformed reply from a worker');
      return;
    }
    // A reply whose request timed out finds nobody waiting.
    for (const reply of replies) this.pending.get(reply.id)?.resolve(reply);
  }

  /**
   * The broker refused a message (a nack). Seen when a quorum queue's leader was on a
   * lost node: a channel that sent to the queue before keeps being refused (for minutes,
   * on RabbitMQ 3.10) although the queue has a new leader, where a new channel finds it at
   * once. So new channels, through a reconnect.
   */
  private refused(link: BrokerLink): void {
    if (this.link !== link) return;
    this.log.warn('the broker refused a message; reconnecting so that new channels find the queues');
    this.drop(link);
  }

  /** Closes the current link's connection; `lost` then fails what is in flight and reconnects with new channels. */
  private drop(link: BrokerLink): void {
    if (this.link !== link) return;
    link.connection.close().catch((err: Error) => this.log.debug({ err }, 'broker connection already closed'));
  }

  /** The broker connection is gone: fail what is in flight, then reconnect. */
  private lost(link: BrokerLink): void {
    if (this.link !== link) return; // an earlier connection, already replaced
    this.link = null;
    if (this.closing) return;
    this.log.error('lost the RabbitMQ connection; failing requests in flight and reconnecting');
    for (const [id, p] of this.pending) p.resolve(unavailableReply(id, 'the broker connection was lost'));
    void this.reconnect();
  }

  /** One reconnect loop at a time, with bounded backoff, until connected or closed. */
  private async reconnect(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    try {
      for (let attempt = 0; !this.closing; attempt++) {
        await new Promise((r) => setTimeout(r, reconnectDelayMs(attempt)));
        if (this.closing) return;
        try {
          await this.open();
          this.log.info({ attempts: attempt + 1 }, 'reconnected to RabbitMQ');
          return;
        } catch (err) {
          this.log.warn({ err, attempt }, 'RabbitMQ not reachable yet');
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }

  /** True while the gateway holds a broker link; false while it reconnects or after close. */
  get connectedToBroker(): boolean {
    return this.link !== null;
  }

  private connected(): BrokerLink {
    if (!this.link) throw unavailable('the gateway is reconnecting to the broker');
    return this.link;
  }

  /** `timedOut` makes the error: only the caller knows the whole wait a slice belongs to. */
  private awaitReply(requestId: string, timeoutMs: number, timedOut: () => DbaasError): Promise<RpcReply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(timedOut());
      }, timeoutMs);
      this.pending.set(requestId, {
        timer,
        resolve: (reply) => {
          clearTimeout(timer);
          this.pending.delete(requestId);
          resolve(reply);
        },
      });
    });
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Sends what this turn asked for: one ReadQ message and one WriteQ message (or a few, past MAX_RPC_BATCH). */
  private flush(): void {
    this.flushScheduled = false;
    const link = this.link;
    while (this.readsOut.length) {
      const batch = this.readsOut.splice(0, MAX_RPC_BATCH);
      if (!link) {
        for (const { request } of batch) this.pending.get(request.id)?.resolve(unavailableReply(request.id, 'the gateway is reconnecting to the broker'));
        continue;
      }
      this.onBatch?.('read', batch.length);
      // Expire with the most patient request, so a slave never works on a batch nobody waits for.
      const remaining = Math.max(1, Math.max(...batch.map((r) => r.deadline)) - Date.now());
      try {
        link.publishChannel.sendToQueue(
          this.names.readQ,
          encode({ reads: batch.map((r) => r.request) }),
          { replyTo: this.replyQueue, expiration: String(remaining), contentType: 'application/json' },
          (err) => {
            if (!err) return;
            for (const { request } of batch) this.pending.get(request.id)?.resolve(unavailableReply(request.id, 'the broker did not accept the read'));
            this.refused(link);
          },
        );
      } catch (err) {
        // The channel closed since this turn began (the connection is going away).
        this.log.warn({ err }, 'could not send reads');
        for (const { request } of batch) this.pending.get(request.id)?.resolve(unavailableReply(request.id, 'the broker connection was lost'));
      }
    }
    while (this.writesOut.length) {
      const writes = this.writesOut.splice(0, MAX_RPC_BATCH);
      const failAll = (message: string) => {
        for (const w of writes) this.pending.get(w.requestId)?.resolve(unavailableReply(w.requestId, message));
      };
      if (!link) {
        failAll('the gateway is reconnecting to the broker');
        continue;
      }
      this.onBatch?.('write', writes.length);
      // Not persistent: a request lives in WriteQ until the master acks it, which is enough
      // to survive the master's crash; a client hears success only once the write is in the
      // durable log, and a broker restart fails the requests in flight (UNAVAILABLE).
      // Waits for whichever comes first, the master's answer or a nack.
      try {
        link.writeChannel.sendToQueue(this.names.writeQ, encode({ writes }), { replyTo: this.replyQueue, contentType: 'application/json' }, (err) => {
          if (!err) return;
          failAll('the broker did not accept the write');
          this.refused(link);
        });
      } catch (err) {
        this.log.warn({ err }, 'could not send writes');
        failAll('the broker connection was lost');
      }
    }
  }

  async read<N extends ReadOpName>(op: N, args: ReadArgs<N>, options: ReadOptions): Promise<ReadAnswer<ReadResult<N>>> {
    const deadline = Date.now() + this.settings.readTimeoutMs;
    // Retries after a lagging slave wait in slices of what is left; the error speaks of the whole wait.
    let furthestSeq: number | null = null;
    const timedOut = () =>
      unavailable(
        furthestSeq === null
          ? `no slave answered the read ${op} within ${this.settings.readTimeoutMs} ms (READ_TIMEOUT_MS)`
          : `no slave reached seq ${options.minSeq} within ${this.settings.readTimeoutMs} ms (READ_TIMEOUT_MS); the furthest was at seq ${furthestSeq}`,
      );
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw timedOut();
      this.connected();
      const id = randomUUID();
      const answer = this.awaitReply(id, remaining, timedOut);
      this.readsOut.push({ request: { id, op, args, minSeq: options.minSeq, consistency: options.consistency }, deadline });
      this.schedule();
      const reply = await answer;
      if (reply.ok) return { result: reply.result as ReadResult<N>, workerId: reply.workerId };
      if (!reply.lagging) throw new DbaasError(reply.error.code, reply.error.message);
      furthestSeq = Math.max(furthestSeq ?? 0, reply.appliedSeq);
      await new Promise((r) => setTimeout(r, LAG_RETRY_DELAY_MS));
    }
  }

  async write<N extends WriteOpName>(op: N, args: WriteArgs<N>, identity?: WriteIdentity): Promise<WriteAnswer<WriteResult<N>>> {
    // Replies are matched by request id: a client retrying its key while the first try
    // is still out waits for that one, then gets the logged answer (or CONFLICT).
    if (identity) while (this.pendingKeys.has(identity.requestId)) await this.pendingKeys.get(identity.requestId);
    this.connected();
    const requestId = identity?.requestId ?? randomUUID();
    const answer = this.awaitReply(requestId, this.settings.writeTimeoutMs, () =>
      unavailable(`no master answered the write ${op} within ${this.settings.writeTimeoutMs} ms (WRITE_TIMEOUT_MS)`),
    );
    this.writesOut.push({ requestId, op, args, ...(identity && { fingerprint: identity.fingerprint }) });
    this.schedule();
    if (identity)
      this.pendingKeys.set(
        requestId,
        answer.then(
          () => undefined,
          () => undefined,
        ),
      );
    const reply = await answer.finally(() => identity && this.pendingKeys.delete(requestId));
    if (!reply.ok) throw new DbaasError(reply.error.code, reply.error.message);
    const seq = reply.seq ?? reply.appliedSeq;
    if (seq > this.lastSeq) this.lastSeq = seq;
    return { result: reply.result as WriteResult<N>, workerId: reply.workerId, seq };
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const [, p] of this.pending) clearTimeout(p.timer);
    this.pending.clear();
    await this.link?.connection.close();
  }
}
