/**
 * A master's lease on its leadership. ZooKeeper expires a session no earlier than
 * `sessionTimeoutMs` after the server last heard from the client, and while this process
 * may be alive only then can a new master be elected and fence the log (the orchestrator
 * removes a master's znodes early only once the runtime reports its process dead). So if a read of the epoch znode that *started*
 * at t0 came back with this master's epoch, no other master can have written to the log
 * before t0 + sessionTimeoutMs. The lease runs to t0 + leaseMs, leaseMs well short of
 * the session timeout (clock-rate and scheduling margin): a batch confirmed by the broker
 * within the lease is in the log before any newer epoch marker, so replicas apply it; a
 * batch confirmed after it may be skipped by them, so it must not be acknowledged.
 *
 * A master frozen (SIGSTOP, a long pause) or cut off from ZooKeeper sees its lease run
 * out: its next batch is refused and it stops itself, freeing WriteQ for the new master.
 */
export interface LeaseProbe {
  /** Reads the cluster epoch from ZooKeeper. */
  readEpoch(): Promise<number>;
}

export interface LeaseOptions {
  epoch: number;
  leaseMs: number;
  /** How often the epoch is read; several times per lease. */
  checkEveryMs: number;
  /** Called once when the lease is gone for good (lapsed, or a newer epoch exists). */
  onLost(reason: string): void;
  now?: () => number;
}

export class LeaderLease {
  private provenAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | null = null;
  private probing = false;
  private lost = false;
  private lastError: string | null = null;
  private readonly now: () => number;

  constructor(
    private readonly probe: LeaseProbe,
    private readonly options: LeaseOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
  }

  /** Proves the lease once (the caller has just been elected), then keeps renewing it. */
  async start(): Promise<void> {
    await this.renew();
    if (!this.lost) this.timer = setInterval(() => void this.tick(), this.options.checkEveryMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** True while this master may still acknowledge what the broker confirms now. */
  get valid(): boolean {
    return !this.lost && this.now() < this.provenAt + this.options.leaseMs;
  }

  /** Milliseconds of lease left (negative once lapsed), for logs. */
  get remainingMs(): number {
    return Math.round(this.provenAt + this.options.leaseMs - this.now());
  }

  private lose(reason: string): void {
    if (this.lost) return;
    this.lost = true;
    this.stop();
    this.options.onLost(reason);
  }

  private async tick(): Promise<void> {
    if (!this.valid) {
      const why = this.lastError ? `last read failed: ${this.lastError}` : 'ZooKeeper not heard from in time';
      return this.lose(`leadership lease lapsed ${-this.remainingMs} ms ago (${why})`);
    }
    if (this.probing) return; // one read in flight; a hung one simply lets the lease lapse
    this.probing = true;
    try {
      await this.renew();
      this.lastError = null;
    } catch (err) {
      // Not fatal by itself: the lease lapses unless a later read succeeds in time.
      this.lastError = err instanceof Error ? err.message : String(err);
    } finally {
      this.probing = false;
    }
  }

  private async renew(): Promise<void> {
    const startedAt = this.now();
    const epoch = await this.probe.readEpoch();
    if (epoch !== this.options.epoch) return this.lose(`a newer epoch (${epoch}) was elected; this master had ${this.options.epoch}`);
    this.provenAt = Math.max(this.provenAt, startedAt);
  }
}

/**
 * Two thirds of the session timeout, read four times per lease: a third of the session
 * timeout is left for the two machines' clocks and for scheduling, and a single slow
 * read does not cost the lease.
 */
export function leaseTimings(sessionTimeoutMs: number): Pick<LeaseOptions, 'leaseMs' | 'checkEveryMs'> {
  const leaseMs = Math.floor((sessionTimeoutMs * 2) / 3);
  return { leaseMs, checkEveryMs: Math.max(50, Math.floor(leaseMs / 4)) };
}
