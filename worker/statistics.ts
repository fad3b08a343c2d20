import type { Pool } from 'pg';
import type { Logger } from '../schema';

const TABLES = 'areas, users, rides, ride_riders, _dbaas_log';
const MIN_CHANGES = 1000;
const GROWTH = 0.2;

/**
 * Keeps planner statistics current while replicated writes pour in. Autovacuum analyses
 * at most once a minute; a replica that has just replayed 100k entries into empty tables
 * would meanwhile plan against empty-table statistics (nested seq scans), and the generic
 * plans of its prepared statements (worker/preparedSql.ts), made while tables were small,
 * would stay. ANALYZE refreshes the statistics and invalidates those plans; it runs in
 * the background once the applied seq has grown by 20% (at least 1,000 entries).
 */
export class StatisticsKeeper {
  private analysedAt = 0;
  private running = false;

  constructor(
    private readonly pool: Pool,
    private readonly log: Logger,
  ) {}

  noteAppliedSeq(appliedSeq: number): void {
    const due = Math.max(MIN_CHANGES, this.analysedAt * GROWTH);
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
