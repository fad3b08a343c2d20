import { DbaasError, type RideChangeRecord } from '../../schema';
import { withFields } from '../../platform';

/** A change as the feed keeps it: the record and the subscription keys it concerns. */
export interface LiveChange extends RideChangeRecord {
  /** The subscription keys it concerns, each once. */
  keys: readonly string[];
}

export interface LiveFeedSettings {
  /** Changes kept for resuming subscriptions (`afterSeq`); older ones need a new snapshot. */
  historySize: number;
  /** And at most this much of their text (records and keys, in characters): changes vary in size. */
  historyBytes: number;
  /** Changes one subscription may have waiting before it ends (SLOW_CONSUMER). */
  bufferSize: number;
}

/** The client must start over from a new snapshot: the changes after its seq are no longer known here. */
export const snapshotRequired = (message: string) => new DbaasError('SNAPSHOT_REQUIRED', message);

/** A change but for what KeptChange keeps beside its record text. */
type ChangeBody = Omit<LiveChange, 'seq' | 'at' | 'keys'>;

/**
 * A change as the history keeps it: its record as flat JSON text, under half the heap of
 * the decoded objects (~0.85 KB against ~1.9 KB, bench/NOTES.md *Memory*). Only resuming
 * subscriptions decode it again, and JSON text gives back the same fields and values.
 */
class KeptChange {
  readonly seq: number;
  readonly rideId: number | null;
  /** The change's keys, joined by spaces (no key has one: usernames cannot). */
  readonly keys: string;
  /** What the history's byte bound counts it as: its texts' lengths. */
  readonly size: number;
  private readonly at: string;
  private readonly record: string;

  constructor(change: LiveChange) {
    this.seq = change.seq;
    this.rideId = change.rideId;
    this.at = change.at;
    this.keys = change.keys.join(' ');
    // Named one by one: the rest pattern `{ seq, at, keys, ...record }` cost ~0.7 µs a
    // change. A required field added to the change fails to compile here; an optional one
    // would be left out of resumed changes, so add it here too.
    const record: ChangeBody = { type: change.type, rideId: change.rideId, ride: change.ride, rider: change.rider, rides: change.rides };
    this.record = JSON.stringify(record);
    // JSON.stringify returns a tree of string pieces; reading a character makes V8 flatten
    // it into one string: ~150 B less per kept change.
    this.record.charCodeAt(0);
    this.size = this.record.length + this.keys.length;
  }

  decode(): LiveChange {
    return withFields(JSON.parse(this.record) as ChangeBody, { seq: this.seq, at: this.at, keys: this.keys.split(' ') });
  }
}

/**
 * Where a subscription stands: after the change of `rideId` at `seq`, or after all of
 * `seq` when `rideId` is null. One write can give one key several changes at one seq
 * (`deleteUser`, one per ride it takes or leaves, in ride id order), so a seq alone
 * cannot say which of them a client already has.
 */
export interface LivePosition {
  seq: number;
  rideId: number | null;
}

/** Whether a change comes after a position: a later seq, or a later ride at its seq. */
const isPast = (change: LivePosition, after: LivePosition) =>
  change.seq > after.seq || (change.seq === after.seq && after.rideId !== null && change.rideId !== null && change.rideId > after.rideId);

interface Subscriber {
  key: string;
  /** Changes up to here were handed out (or are in the snapshot); null until started. */
  after: LivePosition | null;
  /** The feed's head when the subscriber registered: changes up to it are in the history. */
  registeredAt: number;
  /**
   * The kept changes a resume is owed, from `backlogAt` on: the history's own objects,
   * decoded one at a time as they are sent. Decoded all at once they took ~38 MB of heap
   * per subscription resuming over 50,000 changes, so about ten such subscriptions could
   * exhaust the gateway's heap.
   */
  backlog: KeptChange[];
  backlogAt: number;
  /** Changes that arrived live and wait to be sent (at most LIVE_BUFFER_CHANGES, and only ones the history keeps). */
  buffer: LiveChange[];
  wake: (() => void) | null;
  ended: DbaasError | true | null;
}

/**
 * The ride changes read from the log (gateway/live/logFollower.ts), kept for a while and
 * handed to subscriptions by key (a route, a ride, a user): every change after a seq, in
 * seq order, exactly once. Each subscription has its own bounded buffer, so one that
 * stops reading ends (SLOW_CONSUMER, with the seq to resume from) instead of holding
 * memory or slowing the others. One pass per change over the subscribers of its keys: no
 * query per subscriber.
 */
export class LiveFeed {
  private readonly history: KeptChange[] = [];
  /** The kept changes' sizes, summed. */
  private keptBytes = 0;
  /**
   * The same changes by key, so a resuming subscription finds its own without scanning
   * all: oldest first, and a key with one change (a ride's, mostly) holds it without an
   * array, which with its slack took more heap than the change's own text.
   */
  private readonly historyByKey = new Map<string, KeptChange | KeptChange[]>();
  /** Every entry with a seq from here on has been read; null before the first one. */
  private coveredFrom: number | null = null;
  private head = 0;
  private readonly byKey = new Map<string, Set<Subscriber>>();

  constructor(private readonly settings: LiveFeedSettings) {}

  get headSeq(): number {
    return this.head;
  }

  /** Seq of the oldest change a subscription can resume after, or null before any entry was read. */
  get oldestResumable(): number | null {
    return this.coveredFrom === null ? null : this.coveredFrom - 1;
  }

  get subscriptions(): number {
    let n = 0;
    for (const set of this.byKey.values()) n += set.size;
    return n;
  }

  /** The follower read the log from `seq` on, with nothing known before (a start, or a gap). */
  restartAt(seq: number): void {
    this.history.length = 0;
    this.keptBytes = 0;
    this.historyByKey.clear();
    this.coveredFrom = seq;
    this.head = seq - 1;
    this.endAll(snapshotRequired(`the log was read again from seq ${seq}; start from a new snapshot`));
  }

  /** The follower read every entry up to `seq`; `changes` are the ride changes among them, in seq order. */
  advance(seq: number, changes: readonly LiveChange[]): void {
    this.coveredFrom ??= changes[0]?.seq ?? seq;
    this.head = Math.max(this.head, seq);
    for (const change of changes) {
      const kept = new KeptChange(change);
      this.history.push(kept);
      this.keptBytes += kept.size;
      for (const key of change.keys) {
        const ofKey = this.historyByKey.get(key);
        if (ofKey === undefined) this.historyByKey.set(key, kept);
        else if (ofKey instanceof KeptChange) this.historyByKey.set(key, [ofKey, kept]);
        else ofKey.push(kept);
        const subscribers = this.byKey.get(key);
        if (subscribers) for (const s of subscribers) this.offer(s, change);
      }
    }
    // Trimmed in slices of a sixteenth, not per change: each trim moves the whole array.
    // A trim may take part of a seq's changes; `start` then serves no position within it.
    // Both bounds hold: by count, what LIVE_HISTORY_CHANGES promises for resuming; by
    // size, the history's share of the gateway's memory, however large each change is (a
    // joined ride lists up to MAX_RIDERS_PER_RIDE riders).
    const { historySize, historyBytes } = this.settings;
    if (this.history.length - historySize > Math.floor(historySize / 16) || this.keptBytes - historyBytes > Math.floor(historyBytes / 16)) {
      let excess = 0;
      while (this.history.length - excess > historySize || this.keptBytes > historyBytes) this.keptBytes -= this.history[excess++].size;
      const dropped = this.history.splice(0, excess);
      // The oldest changes of each of their keys, so the front of each key's list.
      for (const change of dropped) {
        for (const key of change.keys.split(' ')) {
          const kept = this.historyByKey.get(key);
          if (kept instanceof KeptChange || kept?.length === 1) this.historyByKey.delete(key);
          else kept?.shift();
        }
      }
      this.coveredFrom = dropped[dropped.length - 1].seq + 1;
      // A subscription whose next unsent change (owed from the history, or buffered live)
      // is older than what is now kept ends, as its resume would: it would keep dropped
      // changes alive for as long as its client does not read. So every change waiting
      // for any subscriber is one the history holds, and what subscriptions hold together
      // is bounded by the history's bounds, not by LIVE_BUFFER_CHANGES times their number.
      // A scan of all subscriptions per trim (one per sixteenth of a bound) costs less
      // than keeping a set of the lagging ones up to date per change.
      for (const set of this.byKey.values()) {
        for (const s of set) {
          const unsent = s.backlog[s.backlogAt] ?? s.buffer[0];
          if (unsent !== undefined && unsent.seq < this.coveredFrom) {
            this.end(
              s,
              snapshotRequired(
                `this subscription fell behind what the gateway keeps: its next change (seq ${unsent.seq}) is no longer kept (LIVE_HISTORY_CHANGES, LIVE_HISTORY_BYTES); start from a new snapshot`,
              ),
            );
          }
        }
      }
    }
  }

  /** Every subscription ends: the data changed in a way changes cannot describe (clearDatabase). */
  endAll(error: DbaasError): void {
    for (const set of this.byKey.values()) for (const s of set) this.end(s, error);
  }

  /**
   * A subscription to `key`. With `after`, it yields the changes after that position (from
   * the history, then live); SNAPSHOT_REQUIRED if the history no longer reaches back to it.
   * Without, it yields nothing until `start(snapshotSeq)`, buffering live changes meanwhile.
   */
  subscribe(key: string, after?: LivePosition): LiveSubscription {
    const s: Subscriber = { key, after: null, registeredAt: this.head, backlog: [], backlogAt: 0, buffer: [], wake: null, ended: null };
    const set = this.byKey.get(key) ?? new Set();
    set.add(s);
    this.byKey.set(key, set);
    const subscription = new LiveSubscription(this, s);
    if (after !== undefined) this.start(s, after);
    return subscription;
  }

  /** @internal LiveSubscription's: hand out the changes after `after`, from the history first. */
  start(s: Subscriber, after: LivePosition): void {
    const oldest = this.oldestResumable;
    // A position among the changes of the oldest resumable seq needs the rest of them,
    // which may be gone (trimmed, or read before a restart): start over, whatever the head.
    const amongUnkept = after.rideId !== null && after.seq === oldest;
    if (amongUnkept || (after.seq < this.head && (oldest === null || after.seq < oldest))) {
      this.end(s, snapshotRequired(`changes after seq ${after.seq} are no longer kept here (the oldest is after seq ${oldest ?? this.head}); start from a new snapshot`));
      return;
    }
    const live = s.buffer;
    const ofKey = this.historyByKey.get(s.key);
    const kept = ofKey === undefined ? [] : ofKey instanceof KeptChange ? [ofKey] : ofKey;
    // Changes after the head it registered at come live (`live`, then `offer`).
    s.backlog = kept.slice(firstAfter(kept, after), firstAfter(kept, { seq: s.registeredAt, rideId: null }));
    s.backlogAt = 0;
    s.buffer = [];
    s.after = after;
    for (const change of live) this.offer(s, change);
    s.wake?.();
  }

  private offer(s: Subscriber, change: LiveChange): void {
    if (s.ended) return;
    if (s.after !== null && !isPast(change, s.after)) return;
    if (s.buffer.length >= this.settings.bufferSize) {
      this.end(s, new DbaasError('SLOW_CONSUMER', `this subscription fell ${s.buffer.length} changes behind (LIVE_BUFFER_CHANGES); subscribe again with ${resumeArgs(s)}`));
      return;
    }
    s.buffer.push(change);
    s.wake?.();
  }

  /** @internal */
  next(s: Subscriber): LiveChange | undefined {
    if (s.after === null) return undefined;
    const change = s.backlogAt < s.backlog.length ? s.backlog[s.backlogAt++].decode() : s.buffer.shift();
    if (s.backlogAt === s.backlog.length && s.backlogAt > 0) {
      [s.backlog, s.backlogAt] = [[], 0]; // let the history's objects go
    } else if (s.backlogAt >= 1024 && s.backlogAt * 2 >= s.backlog.length) {
      // The sent part goes as it is read (a copy per halving: amortised O(1)), so a long
      // resume does not keep changes the history has since dropped.
      [s.backlog, s.backlogAt] = [s.backlog.slice(s.backlogAt), 0];
    }
    // The change is a position itself: no object made per change and subscriber.
    if (change) s.after = change;
    return change;
  }

  /** @internal */
  end(s: Subscriber, reason: DbaasError | true): void {
    if (s.ended) return;
    s.ended = reason;
    s.buffer.length = 0;
    s.backlog = [];
    const set = this.byKey.get(s.key);
    set?.delete(s);
    if (set?.size === 0) this.byKey.delete(s.key);
    s.wake?.();
  }
}

/**
 * One subscription's changes, as an async iterator (what graphql-ws pulls from). An error
 * that ends it (SLOW_CONSUMER, SNAPSHOT_REQUIRED) is its last value, so the client gets it
 * with its code before `complete`; then it is done.
 */
export class LiveSubscription implements AsyncIterableIterator<LiveChange | DbaasError> {
  constructor(
    private readonly feed: LiveFeed,
    private readonly s: Subscriber,
  ) {}

  /** Starts a subscription made without `after` once its snapshot, as of `seq`, is out. */
  startAfter(seq: number): void {
    if (!this.s.ended) this.feed.start(this.s, { seq, rideId: null });
  }

  /**
   * One promise per change, settled by the feed's wake-up itself, and no closure made per
   * change: at 10,000 subscribers whatever waits for a subscription's next change is made
   * ~25,000 times a second and outlives young-generation collections (bench:live).
   * One call at a time, as graphql-ws makes them: a second call while one waits would
   * leave the first unsettled.
   */
  next(): Promise<IteratorResult<LiveChange | DbaasError>> {
    return new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      this.settle();
    });
  }

  private resolve: ((result: IteratorResult<LiveChange | DbaasError>) => void) | null = null;
  private reject: ((err: unknown) => void) | null = null;
  /** The error that ended it has been handed out. */
  private told = false;

  /** Runs inside the feed's offer, start and end too: it must not throw into them. */
  private readonly settle = (): void => {
    this.s.wake = null;
    const resolve = this.resolve;
    const reject = this.reject;
    if (!resolve || !reject) return;
    let change: LiveChange | undefined;
    try {
      change = this.s.ended ? undefined : this.feed.next(this.s);
    } catch (err) {
      // A kept change that does not decode fails this subscription, not the others the
      // same advance serves.
      this.feed.end(this.s, true);
      this.resolve = this.reject = null;
      reject(err);
      return;
    }
    const ended = this.s.ended;
    if (!ended && !change) {
      this.s.wake = this.settle;
      return;
    }
    this.resolve = this.reject = null;
    if (change) resolve({ done: false, value: change });
    else if (ended instanceof DbaasError && !this.told) {
      this.told = true;
      resolve({ done: false, value: ended });
    } else resolve({ done: true, value: undefined });
  };

  async return(): Promise<IteratorResult<LiveChange | DbaasError>> {
    this.feed.end(this.s, true);
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** Index of the first change past `after` in one key's list, in seq then ride order (binary search). */
function firstAfter(changes: readonly KeptChange[], after: LivePosition): number {
  let lo = 0;
  let hi = changes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (isPast(changes[mid], after)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * The arguments that resume a subscription ended now: `afterRideId` too when changes of
 * its last seq are still unsent, since resuming after the whole seq would skip them.
 */
function resumeArgs(s: Subscriber): string {
  // Ended before its snapshot was out: no position of its own to resume from.
  if (s.after === null) return 'no afterSeq (a new snapshot)';
  const after = s.after;
  const unsent = s.backlog[s.backlogAt] ?? s.buffer[0];
  const more = unsent !== undefined && unsent.seq === after.seq;
  return more && after.rideId !== null ? `afterSeq: ${after.seq}, afterRideId: ${after.rideId}` : `afterSeq: ${after.seq}`;
}
