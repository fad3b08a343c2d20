import type { Pool } from 'pg';
import type { Logger } from '../platform';

/** Rows deleted per statement: short transactions, no long lock on the log table. */
const BATCH = 10_000;

/**
 * Keeps `_dbaas_log` (the request ids and results that make writes exactly-once) to the
 * idempotency window. A retry whose first try was applied within the window returns the
 * original result; older request ids are forgotten. Without this the table grows with
 * every write for ever, and every snapshot ships all of it.
 *
 * Deletes from the oldest seq up, in batches, stopping at the first batch that is not
 * wholly older than the window: the primary key is walked, no index on time is needed.
 */
export class RequestIdTrimmer {
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly pool: Pool,
    private readonly windowSeconds: number,
    private readonly log: Logger,
  ) {}

  /** Trims now, then every quarter window (at most every 10 minutes). */
  start(): void {
    const everyMs = Math.min(600_000, Math.max(1000, (this.windowSeconds * 1000) / 4));
    void this.trim();
    this.timer = setInterval(() => void this.trim(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Returns how many request ids were forgotten. */
  async trim(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    let total = 0;
    try {
      for (;;) {
        const { rowCount } = await this.pool.query(
          `WITH oldest AS (SELECT seq, applied_at FROM _dbaas_log ORDER BY seq LIMIT ${BATCH})
           DELETE FROM _dbaas_log d USING oldest o
            WHERE d.seq = o.seq AND o.applied_at < now() - make_interval(secs => $1)`,
          [this.windowSeconds],
        );
        total += rowCount ?? 0;
        if ((rowCount ?? 0) < BATCH) break;
      }
      if (total) this.log.info({ forgotten: total, windowSeconds: this.windowSeconds }, 'request ids older than the idempotency window trimmed');
    } catch (err) {
      // The next run tries again; a failing database shows up on the request path too.
      this.log.warn({ err }, 'could not trim old request ids');
    } finally {
      this.running = false;
    }
    return total;
  }
}
