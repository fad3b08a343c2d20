/**
 * A master's lease on its leadership. Each renewal is one ZooKeeper write of this master's
 * membership znode, made on condition that its election candidacy still exists (one
 * multi). A renewal that *started* at t0 and succeeded proves no other master can have
 * written to the log before t0 + leaseMs, because a successor is elected only once this
 * candidacy is gone, and that happens only
 * - when this process is known dead (the runtime reported its exit: the orchestrator
 *   removes its znodes);
 * - when its session expires, `sessionTimeoutMs` after the server last heard from it,
 *   leaseMs being well short of that; or
 * - when the orchestrator removes it on condition that the membership znode still has the
 *   version it first read more than `releaseAfterMs(leaseMs)` ago (schema/messages.ts): every
 *   renewal since would have changed that version, every renewal after it fails.
 * So a batch confirmed by the broker within the lease is in the log before any newer epoch
 * marker, and replicas apply it; a batch confirmed after it may be skipped by them, so it
 * must not be acknowledged.
 *
 * A master frozen (SIGSTOP, a long pause) or cut off from ZooKeeper sees its lease run
 * out: its next batch is refused and it stops itself, freeing WriteQ for the new master.
 */
export interface LeaseProbe {
  /** Writes this master's membership znode if its candidacy exists: true once written, false if the candidacy is gone. */
  prove(): Promise<boolean>;
}

export interface LeaseOptions {
  leaseMs: number;
  /** How often the lease is renewed; several times per lease. */
  checkEveryMs: number;
  /** Called once when the lease is gone for good (lapsed, or the candidacy removed). */
  onLost(reason: string): void;
  /** Monotonic milliseconds (performance.now by default). */
  now?: () => number;
  /** Wall-clock milliseconds (Date.now by default). */
  wallNow?: () => number;
}

/** How soon a first renewal that failed (a connection blip right after the election) is tried again. */
const FIRST_RENEWAL_RETRY_MS = 100;

/**
 * Counted on two clocks, and valid only while both say so: the monotonic clock does not
 * step, but on Linux it stops while the machine is suspended, when the wall clock runs on
 * (and a successor may be elected). A wall clock stepped forward only costs a fail-stop.
 */
export class LeaderLease {
  private provenAt = Number.NEGATIVE_INFINITY;
  private provenWallAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | null = null;
  private probing = false;
  private lost = false;
  private lastError: string | null = null;
  private readonly now: () => number;
  private readonly wallNow: () => number;

  constructor(
    private readonly probe: LeaseProbe,
    private readonly options: LeaseOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.wallNow = options.wallNow ?? (() => Date.now());
  }

  /**
   * Proves the lease once (the caller has just been elected), then keeps renewing it. A
   * first renewal that fails is tried again for up to a lease: only a success counts.
   */
  async start(): Promise<void> {
    const began = this.now();
    for (;;) {
      try {
        await this.renew();
        break;
      } catch (err) {
        if (this.now() - began >= this.options.leaseMs) throw err;
        await new Promise((resolve) => setTimeout(resolve, FIRST_RENEWAL_RETRY_MS));
      }
    }
    if (!this.lost) this.timer = setInterval(() => void this.tick(), this.options.checkEveryMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** True while this master may still acknowledge what the broker confirms now. */
  get valid(): boolean {
    return !this.lost && this.remainingMs > 0;
  }

  /** Milliseconds of lease left (negative once lapsed), by whichever clock has less. */
  get remainingMs(): number {
    return Math.round(Math.min(this.provenAt + this.options.leaseMs - this.now(), this.provenWallAt + this.options.leaseMs - this.wallNow()));
  }

  private lose(reason: string): void {
    if (this.lost) return;
    this.lost = true;
    this.stop();
    this.options.onLost(reason);
  }

  private async tick(): Promise<void> {
    if (!this.valid) {
      const why = this.lastError ? `last renewal failed: ${this.lastError}` : 'ZooKeeper not heard from in time';
      return this.lose(`leadership lease lapsed ${-this.remainingMs} ms ago (${why})`);
    }
    if (this.probing) return; // one renewal in flight; a hung one simply lets the lease lapse
    this.probing = true;
    try {
      await this.renew();
      this.lastError = null;
    } catch (err) {
      // Not fatal by itself: the lease lapses unless a later renewal succeeds in time.
      this.lastError = err instanceof Error ? err.message : String(err);
    } finally {
      this.probing = false;
    }
  }

  private async renew(): Promise<void> {
    const startedAt = this.now();
    const startedWallAt = this.wallNow();
    if (!(await this.probe.prove())) return this.lose('its election candidacy is gone: another master may be elected');
    this.provenAt = Math.max(this.provenAt, startedAt);
    this.provenWallAt = Math.max(this.provenWallAt, startedWallAt);
  }
}
