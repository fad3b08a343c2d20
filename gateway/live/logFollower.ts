import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { decode, entriesOf, entryVerdict, logMessageSchema, type LogPosition } from '../../schema';
import { connectBroker, type Logger } from '../../platform';
import type { LiveFeed } from './liveFeed';
import { rideChangesOf } from './rideChanges';

export interface LogFollowerOptions {
  amqpUrl: string;
  streamQueue: string;
  /** How far back in time the first read starts: what a restarted gateway can resume. */
  replayWindowMs: number;
  log: Logger;
}

/** Messages in flight from the stream; each is decoded and acknowledged on arrival. */
const PREFETCH = 500;
const RETRY_MS = [250, 500, 1000, 2000, 5000];

/**
 * The gateway's reader of the durable log, for live subscriptions: it follows SyncQ's
 * stream as a replica does (the same rules for fenced-off and repeated entries, see
 * schema/logRules.ts) but applies nothing, turning each entry into the ride changes it
 * made (./rideChanges) for the LiveFeed. It starts `replayWindowMs` back, so a client of a
 * gateway that restarted can resume from its last seq, and after a lost connection it
 * resumes from the offset after the last message it read, so it never skips one.
 */
export class LogFollower {
  private connection: ChannelModel | null = null;
  private next: number | { '!': 'timestamp'; value: number };
  private position: LogPosition | null = null;
  private stopped = false;
  private retries = 0;

  constructor(
    private readonly feed: LiveFeed,
    private readonly options: LogFollowerOptions,
  ) {
    // RabbitMQ streams take a time to start from in whole seconds.
    this.next = { '!': 'timestamp', value: Math.floor((Date.now() - options.replayWindowMs) / 1000) };
  }

  async start(): Promise<void> {
    const connection = await connectBroker(this.options.amqpUrl);
    this.connection = connection;
    connection.on('error', (err: Error) => this.options.log.warn({ err }, 'live log follower: broker connection error'));
    connection.on('close', () => this.lost());
    const channel = await connection.createChannel();
    await channel.prefetch(PREFETCH);
    await channel.consume(this.options.streamQueue, (msg) => this.read(channel, msg), { noAck: false, arguments: { 'x-stream-offset': this.next } });
    this.retries = 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.connection?.close().catch((err: Error) => this.options.log.debug({ err }, 'live log follower: closing'));
  }

  private lost(): void {
    this.connection = null;
    if (this.stopped) return;
    const wait = RETRY_MS[Math.min(this.retries++, RETRY_MS.length - 1)];
    this.options.log.warn({ retryInMs: wait }, 'live log follower lost the broker; reconnecting');
    setTimeout(() => {
      this.start().catch((err: Error) => {
        this.options.log.warn({ err }, 'live log follower could not reconnect');
        this.lost();
      });
    }, wait).unref();
  }

  private read(channel: Channel, msg: ConsumeMessage | null): void {
    if (!msg) {
      if (!this.stopped) this.options.log.warn('live log follower: the broker cancelled the stream consumer');
      return;
    }
    const offset = Number(msg.properties.headers?.['x-stream-offset']);
    this.next = offset + 1;
    channel.ack(msg);
    let entries;
    try {
      entries = entriesOf(decode(logMessageSchema, msg.content));
    } catch (err) {
      // Replicas refuse it too (and dead-letter nothing: it is the log); nothing to follow.
      this.options.log.warn({ err, offset }, 'live log follower: undecodable log message skipped');
      return;
    }
    const at = new Date().toISOString();
    for (const entry of entries) {
      if (entry.kind === 'epoch') {
        if (this.position) this.position.epoch = Math.max(this.position.epoch, entry.epoch);
        continue;
      }
      if (!this.position) {
        this.position = { appliedSeq: entry.seq - 1, epoch: entry.epoch };
        this.feed.restartAt(entry.seq);
      }
      const verdict = entryVerdict(this.position, entry);
      if (verdict === 'skip') continue;
      if (verdict === 'gap') {
        this.options.log.warn({ applied: this.position.appliedSeq, next: entry.seq }, 'live log follower: gap in the log; subscriptions start over');
        this.feed.restartAt(entry.seq);
      }
      this.position = { appliedSeq: entry.seq, epoch: Math.max(this.position.epoch, entry.epoch) };
      const changes = rideChangesOf(entry, at);
      if (changes === 'reset') this.feed.restartAt(entry.seq + 1);
      else this.feed.advance(entry.seq, changes);
    }
  }
}
