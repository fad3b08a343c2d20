import type { ChannelModel, ConsumeMessage } from 'amqplib';
import { decode, entriesOf, entryVerdict, logMessageSchema, type LogPosition, type WriteEntry } from '../../schema';
import { batchedAcks, connectBroker, readStreamFrom, reconnectDelayMs, streamOffsetOf, type BatchedAcks, type StreamStart, type Logger } from '../../platform';

/** What reads the log through the follower: the live feed and the read cache. */
export interface LogReader {
  /** Entries from `seq` on follow in order; nothing before it is known (a start, or a gap). */
  restartAt(seq: number): void;
  /** The next write in seq order; `at` is when the follower read it. */
  take(entry: WriteEntry, at: string): void;
  /** Whether the follower is reading the log now (false while it reconnects). */
  connected?(up: boolean): void;
}

export interface LogFollowerOptions {
  amqpUrl: string;
  connectionName: string;
  streamQueue: string;
  /** How far back in time the first read starts: what a restarted gateway can resume. */
  replayWindowMs: number;
  log: Logger;
}

/** One connection's start: whether its consumer is up, and what ended it if anything did. */
interface Attempt {
  connection: ChannelModel;
  up: boolean;
  ended: 'closed the connection' | 'cancelled the stream consumer' | null;
}

/** Messages in flight from the stream; each is decoded on arrival. */
const PREFETCH = 500;
/** Acknowledged (credit granted) fifty at a time, or 50 ms after the first (platform/batchedAcks). */
const ACK_EVERY = 50;
const ACK_AFTER_MS = 50;

/**
 * The gateway's reader of the durable log, for live subscriptions and the read cache: it
 * follows SyncQ's stream as a replica does (the same rules for fenced-off and repeated
 * entries, see schema/logRules.ts) but applies nothing, handing each entry to its readers
 * (the live feed through ./rideChanges, gateway/readCache). It starts `replayWindowMs` back, so a client of a
 * gateway that restarted can resume from its last seq, and after a lost connection it
 * resumes from the offset after the last message it read, so it never skips one.
 */
export class LogFollower {
  private connection: ChannelModel | null = null;
  private next: StreamStart;
  private position: LogPosition | null = null;
  /**
   * The highest epoch of the markers read before the first write entry: a fenced-off
   * master's late entry may follow the new master's marker (worker/lease.ts), and must be
   * skipped from the start, as replicas skip it.
   */
  private markerEpoch = 0;
  private stopped = false;
  private retries = 0;

  constructor(
    private readonly readers: readonly LogReader[],
    private readonly options: LogFollowerOptions,
  ) {
    // RabbitMQ streams take a time to start from in whole seconds.
    this.next = { '!': 'timestamp', value: Math.floor((Date.now() - options.replayWindowMs) / 1000) };
  }

  async start(): Promise<void> {
    const connection = await connectBroker(this.options.amqpUrl, this.options.connectionName);
    connection.on('error', (err: Error) => this.options.log.warn({ err }, 'live log follower: broker connection error'));
    // Until the consumer is up a close, or a cancel, is this start's failure (the caller
    // retries), not a second reconnect; one that comes between is seen below.
    const attempt: Attempt = { connection, up: false, ended: null };
    connection.on('close', () => {
      attempt.ended = 'closed the connection';
      if (attempt.up) this.lost();
    });
    try {
      const channel = await connection.createChannel();
      await channel.prefetch(PREFETCH);
      const acks = batchedAcks(channel, ACK_EVERY, ACK_AFTER_MS, this.options.log);
      await channel.consume(this.options.streamQueue, (msg) => (msg ? this.read(acks, msg) : this.cancelled(attempt)), readStreamFrom(this.next));
      if (attempt.ended) throw new Error(`the broker ${attempt.ended} as it started`);
    } catch (err) {
      // Not left open beside the next try's (the stream gone, say).
      await connection.close().catch((closeErr: Error) => this.options.log.debug({ err: closeErr }, 'live log follower: closing a failed start'));
      throw err;
    }
    attempt.up = true;
    this.connection = connection;
    // Stopped while this reconnected: stop() found no connection to close.
    if (this.stopped) return this.stop();
    for (const r of this.readers) r.connected?.(true);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.connection?.close().catch((err: Error) => this.options.log.debug({ err }, 'live log follower: closing'));
  }

  private lost(): void {
    this.connection = null;
    for (const r of this.readers) r.connected?.(false);
    if (this.stopped) return;
    const wait = reconnectDelayMs(this.retries++);
    this.options.log.warn({ retryInMs: wait }, 'live log follower lost the broker; reconnecting');
    setTimeout(() => {
      this.start().catch((err: Error) => {
        this.options.log.warn({ err }, 'live log follower could not reconnect');
        this.lost();
      });
    }, wait).unref();
  }

  /**
   * The broker cancelled the stream consumer: the stream was deleted, or its leader moved
   * (a RabbitMQ node left). Read on from where it stopped, as after a lost connection,
   * which closing brings about (lost()); during a start, that start fails instead.
   */
  private cancelled(attempt: Attempt): void {
    attempt.ended ??= 'cancelled the stream consumer';
    if (!attempt.up || this.stopped) return;
    this.options.log.warn('live log follower: the broker cancelled the stream consumer; reading on from a new connection');
    attempt.connection.close().catch((err: Error) => this.options.log.warn({ err }, 'live log follower: closing after a cancel'));
  }

  private read(acks: BatchedAcks, msg: ConsumeMessage): void {
    // Backing off starts over once a connection delivers, not when it opens: a broker that
    // cancels every consumer at once is tried ever more slowly.
    this.retries = 0;
    const offset = streamOffsetOf(msg);
    this.next = offset + 1;
    acks.done(msg);
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
        else this.markerEpoch = Math.max(this.markerEpoch, entry.epoch);
        continue;
      }
      if (!this.position) {
        this.position = { appliedSeq: entry.seq - 1, epoch: this.markerEpoch };
        for (const r of this.readers) r.restartAt(entry.seq);
      }
      const verdict = entryVerdict(this.position, entry);
      if (verdict === 'skip') continue;
      if (verdict === 'gap') {
        this.options.log.warn({ applied: this.position.appliedSeq, next: entry.seq }, 'live log follower: gap in the log; subscriptions and the read cache start over');
        for (const r of this.readers) r.restartAt(entry.seq);
      }
      this.position = { appliedSeq: entry.seq, epoch: Math.max(this.position.epoch, entry.epoch) };
      for (const r of this.readers) {
        try {
          r.take(entry, at);
        } catch (err) {
          // An entry a reader cannot make sense of (a result of an unexpected shape): that
          // reader starts over after it, as after a gap (its subscriptions end, its cache
          // empties), and the others, and the gateway, go on.
          this.options.log.error({ err, seq: entry.seq, op: entry.op }, 'live log follower: a reader failed on a log entry; it starts over after it');
          r.restartAt(entry.seq + 1);
        }
      }
    }
  }
}
