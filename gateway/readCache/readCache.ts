import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { SelectionAnswer, WriteEntry } from '../../schema';
import type { LogReader } from '../live/logFollower';
import { keysChangedBy } from './dependencies';

export interface ReadCacheSettings {
  /** Bytes of answers kept (least recently used go first); 0 disables the cache. */
  maxBytes: number;
}

/**
 * Why a lookup found no answer: none kept (`absent`), the log reader had not reached the
 * request's position in time (`behind`), the answer's time had passed (`expired`), or
 * the reader is not reading the log (`stopped`).
 */
export type MissReason = 'absent' | 'behind' | 'expired' | 'stopped';

/** Told of what the cache does, for /metrics. */
export interface ReadCacheObserver {
  hit(): void;
  miss(reason: MissReason): void;
  /** Answers dropped because a write changed what they depend on (or everything). */
  invalidated(count: number): void;
}

/** A replica's answer as the cache keeps it: with its expiry by cacheClock (keptAnswerOf). */
export interface KeptAnswer {
  data: string;
  seq: number;
  expiresAt: number | null;
}

interface Entry extends KeptAnswer {
  dependsOn: readonly string[];
}

/**
 * Dependency keys whose last change is remembered; older ones are summed up by
 * `forgottenUpTo`. They only need to outlast a replica read: a createRide brings one new
 * key (its ride) and moves up a few kept ones (route, creator), so 50,000 cover several
 * seconds of writes at 5,000/s; an answer read longer ago is served but not kept, never
 * kept stale. At 200,000 they took ~20 MB of the gateway's peak RSS under the bench's
 * writes (bench/NOTES.md, *Memory*).
 */
export const CHANGED_KEYS_KEPT = 50_000;
/**
 * An answer expires this much early: the replica's clock, which decides which rides are
 * upcoming, may be stepped (NTP) while the answer is kept. How far apart the two clocks
 * stand does not matter (the replica sends time left); how fast each runs is
 * CLOCK_RATE_MARGIN's.
 */
export const CLOCK_MARGIN_MS = 1000;
/** And this share of its time left early: the two clocks' rates (quartz is within 10^-4). */
const CLOCK_RATE_MARGIN = 1 / 1000;

/** The gateway's clock the cache counts expiry by: monotonic, so a step of its own changes nothing. */
export const cacheClock = (): number => performance.now();

/**
 * An answer as kept, with when it may have changed by time alone, by cacheClock (null:
 * never): its time left counted from `sentAt`, when the read was sent (cacheClock), which
 * is no later than the replica's reading of its own clock.
 */
export const keptAnswerOf = ({ seq, data, expiresInMs }: SelectionAnswer, sentAt: number): KeptAnswer => ({ seq, data, expiresAt: expiryOf(expiresInMs, sentAt) });

function expiryOf(expiresInMs: number | null, sentAt: number): number | null {
  if (expiresInMs === null) return null;
  // Not a number: a worker of an earlier version, which sent a time of day instead. Kept
  // as expired: served by no lookup, so no page outlives a departure uncounted.
  if (!Number.isFinite(expiresInMs)) return -Infinity;
  return sentAt + expiresInMs * (1 - CLOCK_RATE_MARGIN) - CLOCK_MARGIN_MS;
}

/** Whether an answer with that expiry may have changed by `now` (cacheClock). */
export const hasExpired = (expiresAt: number | null, now: number): boolean => expiresAt !== null && now >= expiresAt;
/** Reads waiting for the log reader to reach their position at once; more go to a replica. */
const MAX_WAITING = 1024;
// What an answer takes of the heap, so that READ_CACHE_BYTES bounds the heap and not only
// the text: its text and key at one byte a character (V8's one-byte strings; JSON here is
// ASCII but for names), plus the entry and the LRU's slot, and per dependency key its
// place in `dependents`. Measured as heap used after a full GC with 39,000 route answers
// kept (one key each, then two): ~140 bytes an entry, ~220 a key. (Counting 200 in all,
// with the selection's JSON as the key, had let the cache take ~1.6x its bound.)
const ENTRY_OVERHEAD_BYTES = 140;
const DEPENDENCY_BYTES = 220;

/**
 * The key an answer is kept under: a SHA-256 digest of its selection's JSON. The JSON
 * itself (~400-550 characters for a route page or a ride) was a third of what an answer
 * took of the heap; 44 characters instead. A collision would need two selections with
 * the same SHA-256, which no one can find.
 */
export const answerKey = (selectionJson: string): string => createHash('sha256').update(selectionJson).digest('base64');

/**
 * Answers of compiled reads, kept exact by the log: each is stored with the seq it was read
 * at and the keys it depends on (./dependencies), and dropped the moment this gateway's
 * log reader takes a write that changed one of them — no time-to-live, no staleness.
 *
 * An answer is served only when the log has been read at least up to the position the
 * request needs (its X-DBaaS-Min-Seq, this gateway's own writes, and what the workers
 * report): every write up to there has had its chance to drop it. An answer read at seq S
 * is stored only if no key it depends on changed after S as far as the reader has seen
 * (the read and a write may cross). A gap in the log, a write that cannot name what it
 * changed, or a clearDatabase empties the cache.
 */
export class ReadCache implements LogReader {
  private readonly answers: LRUCache<string, Entry>;
  /**
   * Dependency key → the answer, or answers, that depend on it. Most keys (a route, a
   * ride) have one answer; a one-element Set would cost ~200 bytes more per answer.
   */
  private readonly dependents = new Map<string, string | Set<string>>();
  /** Dependency key → seq of the last write that changed it. */
  private readonly changedAt: LRUCache<string, number>;
  /** Every key not in changedAt last changed at or before this seq. */
  private forgottenUpTo = 0;
  private head = 0;
  /** Reading the log: started, and connected. */
  private reading = false;
  private started = false;
  private waiting: Array<{ seq: number; wake: (reached: boolean) => void }> = [];
  /** Replica reads under way, by answer key. */
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(
    settings: ReadCacheSettings,
    private readonly observer: ReadCacheObserver,
  ) {
    this.answers = new LRUCache<string, Entry>({
      maxSize: settings.maxBytes,
      maxEntrySize: Math.max(1, Math.floor(settings.maxBytes / 8)),
      sizeCalculation: (entry, key) => entry.data.length + key.length + ENTRY_OVERHEAD_BYTES + DEPENDENCY_BYTES * entry.dependsOn.length,
      dispose: (entry, key) => this.unindex(key, entry),
    });
    this.changedAt = new LRUCache<string, number>({
      max: CHANGED_KEYS_KEPT,
      dispose: (seq, _key, reason) => {
        if (reason === 'evict') this.forgottenUpTo = Math.max(this.forgottenUpTo, seq);
      },
    });
  }

  /** The last seq the log reader took. */
  get headSeq(): number {
    return this.head;
  }

  get size(): { answers: number; bytes: number } {
    return { answers: this.answers.size, bytes: this.answers.calculatedSize };
  }

  /**
   * The answer kept for `key`, if it may answer a read that needs the log at `position` or
   * later; waits up to `waitMs` for the log reader to get there when an answer is kept.
   */
  async lookup(key: string, position: number, waitMs: number, now: () => number = cacheClock): Promise<string | undefined> {
    if (!this.reading) return this.missed('stopped');
    if (!this.answers.has(key)) return this.missed('absent');
    if (position > this.head && !(await this.reached(position, waitMs))) return this.missed('behind');
    const entry = this.answers.get(key);
    if (!entry) return this.missed('absent');
    if (hasExpired(entry.expiresAt, now())) {
      this.answers.delete(key);
      return this.missed('expired');
    }
    this.observer.hit();
    return entry.data;
  }

  /**
   * One replica read for the same question asked at once: a request joins a read of the
   * same key already under way (`joined`), else `read` runs. Without this, every request
   * for a popular answer that a write just dropped would go to a replica until the first
   * of them came back. A joiner must still check the answer's seq against its own
   * position: the read may have been asked before the writes it must see.
   */
  shared<T>(key: string, read: () => Promise<T>): { result: Promise<T>; joined: boolean } {
    const under = this.pending.get(key);
    if (under) return { result: under as Promise<T>, joined: true };
    const mine = read();
    this.pending.set(key, mine);
    const done = () => {
      if (this.pending.get(key) === mine) this.pending.delete(key);
    };
    mine.then(done, done);
    return { result: mine, joined: false };
  }

  /** Keeps an answer a replica gave, unless a write it depends on was taken after it was read. */
  store(key: string, answer: KeptAnswer, dependsOn: readonly string[]): void {
    if (!this.started) return;
    if (this.forgottenUpTo > answer.seq) return;
    for (const dep of dependsOn) if ((this.changedAt.peek(dep) ?? 0) > answer.seq) return;
    const entry: Entry = { data: answer.data, seq: answer.seq, expiresAt: answer.expiresAt, dependsOn };
    this.answers.set(key, entry);
    if (this.answers.peek(key) !== entry) return; // too large to keep
    for (const dep of dependsOn) {
      const those = this.dependents.get(dep);
      if (those === undefined) this.dependents.set(dep, key);
      else if (typeof those !== 'string') those.add(key);
      else if (those !== key) this.dependents.set(dep, new Set([those, key]));
    }
  }

  restartAt(seq: number): void {
    this.started = true;
    this.reading = true;
    this.dropEverything(seq - 1);
    this.head = seq - 1;
  }

  take(entry: WriteEntry): void {
    const changed = keysChangedBy(entry);
    if (changed === 'everything') this.dropEverything(entry.seq);
    else {
      let dropped = 0;
      for (const dep of changed) {
        this.changedAt.set(dep, entry.seq);
        const those = this.dependents.get(dep);
        if (those === undefined) continue;
        for (const key of typeof those === 'string' ? [those] : [...those]) if (this.answers.delete(key)) dropped++;
      }
      if (dropped) this.observer.invalidated(dropped);
    }
    this.head = entry.seq;
    this.wake();
  }

  connected(up: boolean): void {
    this.reading = up && this.started;
    if (!up) this.wake(true);
  }

  private dropEverything(upTo: number): void {
    if (this.answers.size) this.observer.invalidated(this.answers.size);
    this.answers.clear();
    this.changedAt.clear();
    this.forgottenUpTo = Math.max(this.forgottenUpTo, upTo);
  }

  private unindex(key: string, entry: Entry): void {
    for (const dep of entry.dependsOn) {
      const those = this.dependents.get(dep);
      if (those === key) this.dependents.delete(dep);
      else if (typeof those === 'object') {
        those.delete(key);
        if (!those.size) this.dependents.delete(dep);
      }
    }
  }

  private missed(reason: MissReason): undefined {
    this.observer.miss(reason);
    return undefined;
  }

  /** Resolves true once the reader has taken `seq`, false after `waitMs` (or when it stops reading). */
  private reached(seq: number, waitMs: number): Promise<boolean> {
    if (waitMs <= 0 || this.waiting.length >= MAX_WAITING) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter = {
        seq,
        wake: (reached: boolean) => {
          clearTimeout(timer);
          resolve(reached);
        },
      };
      const timer = setTimeout(() => {
        this.waiting = this.waiting.filter((w) => w !== waiter);
        resolve(false);
      }, waitMs);
      timer.unref();
      this.waiting.push(waiter);
    });
  }

  private wake(all = false): void {
    if (!this.waiting.length) return;
    const still: typeof this.waiting = [];
    for (const w of this.waiting) {
      if (all) w.wake(false);
      else if (w.seq <= this.head) w.wake(true);
      else still.push(w);
    }
    this.waiting = still;
  }
}
