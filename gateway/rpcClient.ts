import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import {
  assertTopology,
  connectBroker,
  DbaasError,
  decode,
  encode,
  rpcReplySchema,
  unavailable,
  type ClusterNames,
  type Logger,
  type ReadArgs,
  type ReadOpName,
  type ReadResult,
  type RpcReply,
  type WriteArgs,
  type WriteOpName,
  type WriteResult,
} from '../schema';

export interface ReadOptions {
  minSeq: number;
  consistency: 'strong' | 'eventual';
}

export interface ReadAnswer<R> {
  result: R;
  workerId: string;
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
  publishChannel: Channel;
  writeChannel: ConfirmChannel;
}

const RECONNECT_DELAYS_MS = [100, 250, 500, 1000, 2000, 5000];

/**
 * The gateway's side of the RPCs: one AMQP connection, long-lived channels, one reply
 * queue per gateway, replies matched by correlation id. If the broker goes away, requests
 * in flight fail with UNAVAILABLE at once and the client reconnects with bounded backoff.
 */
export class RpcClient {
  private pending = new Map<string, Pending>();
  private link: BrokerLink | null = null;
  private closing = false;
  /** Highest seq this gateway saw committed: the floor for read-your-writes. */
  lastSeq = 0;

  private constructor(
    private readonly amqpUrl: string,
    private readonly replyQueue: string,
    private readonly names: ClusterNames,
    private readonly settings: { readTimeoutMs: number; writeTimeoutMs: number; logRetentionBytes: number },
    private readonly log: Logger,
  ) {}

  static async connect(
    amqpUrl: string,
    names: ClusterNames,
    gatewayId: string,
    timeouts: { readTimeoutMs: number; writeTimeoutMs: number; logRetentionBytes: number },
    log: Logger,
  ): Promise<RpcClient> {
    const client = new RpcClient(amqpUrl, names.responseQ(gatewayId), names, timeouts, log);
    await client.open();
    return client;
  }

  private async open(): Promise<void> {
    const connection = await connectBroker(this.amqpUrl);
    connection.on('error', (err: Error) => this.log.error({ err }, 'AMQP connection error'));
    connection.on('close', () => this.lost());
    const publishChannel = await connection.createChannel();
    await assertTopology(publishChannel, this.names, this.settings.logRetentionBytes);
    const writeChannel = await connection.createConfirmChannel();
    await publishChannel.assertQueue(this.replyQueue, { exclusive: true, autoDelete: true, durable: false });
    await publishChannel.consume(
      this.replyQueue,
      (msg) => {
        if (!msg) return;
        const pending = this.pending.get(msg.properties.correlationId as string);
        if (!pending) return; // a reply after its timeout
        try {
          pending.resolve(decode(rpcReplySchema, msg.content));
        } catch (err) {
          this.log.error({ err }, 'malformed reply from a worker');
        }
      },
      { noAck: true },
    );
    this.link = { connection, publishChannel, writeChannel };
  }

  /** The broker connection is gone: fail what is in flight, then reconnect. */
  private lost(): void {
    this.link = null;
    if (this.closing) return;
    this.log.error('lost the RabbitMQ connection; failing requests in flight and reconnecting');
    for (const [, p] of this.pending) p.resolve({ ok: false, workerId: '', appliedSeq: 0, error: { code: 'UNAVAILABLE', message: 'the broker connection was lost' } });
    void this.reconnect(0);
  }

  private async reconnect(attempt: number): Promise<void> {
    await new Promise((r) => setTimeout(r, RECONNECT_DELAYS_MS[Math.min(attempt, RECONNECT_DELAYS_MS.length - 1)]));
    if (this.closing) return;
    try {
      await this.open();
      this.log.info({ attempts: attempt + 1 }, 'reconnected to RabbitMQ');
    } catch (err) {
      this.log.warn({ err, attempt }, 'RabbitMQ not reachable yet');
      void this.reconnect(attempt + 1);
    }
  }

  private connected(): BrokerLink {
    if (!this.link) throw unavailable('the gateway is reconnecting to the broker');
    return this.link;
  }

  private awaitReply(correlationId: string, timeoutMs: number, what: string): Promise<RpcReply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationId);
        reject(unavailable(`no worker answered the ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(correlationId, {
        timer,
        resolve: (reply) => {
          clearTimeout(timer);
          this.pending.delete(correlationId);
          resolve(reply);
        },
      });
    });
  }

  async read<N extends ReadOpName>(op: N, args: ReadArgs<N>, options: ReadOptions): Promise<ReadAnswer<ReadResult<N>>> {
    const deadline = Date.now() + this.settings.readTimeoutMs;
    const body = encode({ op, args, minSeq: options.minSeq, consistency: options.consistency });
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw unavailable(`no slave reached seq ${options.minSeq} within ${this.settings.readTimeoutMs} ms`);
      const { publishChannel } = this.connected();
      const correlationId = randomUUID();
      const answer = this.awaitReply(correlationId, remaining, `read ${op}`);
      // Expire with the request, so a slave never works on a read nobody waits for.
      publishChannel.sendToQueue(this.names.readQ, body, {
        correlationId,
        replyTo: this.replyQueue,
        expiration: String(remaining),
        contentType: 'application/json',
      });
      const reply = await answer;
      if (reply.ok) return { result: reply.result as ReadResult<N>, workerId: reply.workerId };
      if (!reply.lagging) throw new DbaasError(reply.error.code, reply.error.message);
      await new Promise((r) => setTimeout(r, LAG_RETRY_DELAY_MS));
    }
  }

  async write<N extends WriteOpName>(op: N, args: WriteArgs<N>): Promise<WriteAnswer<WriteResult<N>>> {
    const { writeChannel } = this.connected();
    const correlationId = randomUUID();
    const answer = this.awaitReply(correlationId, this.settings.writeTimeoutMs, `write ${op}`);
    const body = encode({ requestId: correlationId, op, args });
    // Persisting the request takes the broker an fsync; the master usually answers before
    // that. So wait for whichever comes first, and turn only a nack into an error.
    writeChannel.sendToQueue(
      this.names.writeQ,
      body,
      { correlationId, replyTo: this.replyQueue, persistent: true, contentType: 'application/json' },
      (err) => {
        if (err) this.pending.get(correlationId)?.resolve({ ok: false, workerId: '', appliedSeq: 0, error: { code: 'UNAVAILABLE', message: 'the broker did not accept the write' } });
      },
    );
    const reply = await answer;
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
