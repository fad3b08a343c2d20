import type { Pool } from 'pg';
import type { Logger } from '../platform';

const TABLES = 'areas, users, rides, ride_riders, _dbaas_log';
const MIN_CHANGES = 1000;
const GROWTH = 0.2;
/** While the replica applies entries in bulk (catching up), wait for the tables to double. */
const BULK_GROWTH = 1;
/** Quiet time after which a bulk is over. */
const SETTLE_MS = 1000;

/**
 * Keeps planner statistics current while replicated writes pour in. Autovacuum analyses
 * at most once a minute; a replica that has just replayed 100k entries into empty tables
 * would meanwhile plan against empty-table statistics (nested seq scans), and the generic
 * plans of its prepared statements (worker/preparedSql.ts), made while tables were small,
 * would stay. ANALYZE refreshes the statistics and invalidates those plans; it runs in
 * the background once the applied seq has grown by 20% (at least 1,000 entries). While
 * the replica applies entries in bulk it waits for 100% growth instead: each ANALYZE
 * samples up to 30,000 rows per table (~150-250 ms of PostgreSQL CPU at 100k rows), and
 * the twenty or so of a 100k-entry catch-up competed with applying it for the same two
 * cores. The plans stay within a factor of two of the data, and once the bulk is over
 * (no entries for a second) the 20% rule applies again, so a replica that has just
 * caught up serves reads with current statistics.
 */
export class StatisticsKeeper {
  private analysedAt = 0;
  private latest = 0;
  private running = false;
  private settle: NodeJS.Timeout | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly log: Logger,
  ) {}

  noteAppliedSeq(appliedSeq: number, bulk = false): void {
    this.latest = appliedSeq;
    clearTimeout(this.settle);
    if (bulk) this.settle = setTimeout(() => this.noteAppliedSeq(this.latest), SETTLE_MS).unref();
    const due = Math.max(MIN_CHANGES, this.analysedAt * (bulk ? BULK_GROWTH : GROWTH));
    if (this.running || appliedSeq - this.analysedAt < due) return;
    this.running = true;
    this.analysedAt = appliedSeq;
    this.pool
      .query(`ANALYZE ${TABLES}`)
      .catch((err: Error) => this.log.warn({ err }, 'ANALYZE failed'))
      .finally(() => {
        this.running = false;
      });
  }
}
