import type { Pool } from 'pg';
import { writeOperation, type LogEntry, type Logger, type Sql, type WriteEntry } from '../schema';
import { inTransaction, type AppliedPosition } from './database';
import { prepared } from './preparedSql';
import type { StatisticsKeeper } from './statistics';

export interface OffsetEntry {
  entry: LogEntry;
  /** The entry's offset in SyncQ's log stream. */
  offset: number;
}

export class LogGapError extends Error {
  readonly code = 'LOG_GAP';
}

/**
 * This worker's copy of the data, advanced strictly in seq order. Each batch of entries
 * is applied in one transaction together with the new applied position, so a crash
 * leaves the database at a batch boundary and a restart resumes exactly there.
 */
export class Replica {
  private position: AppliedPosition;
  private waiters = new Set<{ seq: number; wake: () => void }>();
  private markerListeners = new Set<(markerId: string) => void>();

  constructor(
    private readonly pool: Pool,
    start: AppliedPosition,
    private readonly log: Logger,
    private readonly statistics: StatisticsKeeper,
  ) {
    this.position = { ...start };
  }

  get appliedSeq(): number {
    return this.position.appliedSeq;
  }
  get epoch(): number {
    return this.position.epoch;
  }
  get streamOffset(): number {
    return this.position.streamOffset;
  }

  /** Applies entries (already in stream order) and records the position, atomically. */
  async applyBatch(batch: OffsetEntry[]): Promise<void> {
    if (!batch.length) return;
    const next = { ...this.position };
    const markers: string[] = [];
    const writes: WriteEntry[] = [];
    for (const { entry, offset } of batch) {
      next.streamOffset = offset + 1;
      if (entry.kind === 'epoch') {
        if (entry.epoch > next.epoch) next.epoch = entry.epoch;
        markers.push(entry.markerId);
        continue;
      }
      // A fenced-off master's late entries, or entries applied before a restart.
      if (entry.epoch < next.epoch || entry.seq <= next.appliedSeq) continue;
      if (entry.seq !== next.appliedSeq + 1) {
        throw new LogGapError(`log gap: applied ${next.appliedSeq}, next entry is ${entry.seq}`);
      }
      writes.push(entry);
      next.appliedSeq = entry.seq;
      next.epoch = Math.max(next.epoch, entry.epoch);
    }
    await inTransaction(this.pool, this.log, async (client) => {
      const sql = prepared(client);
      await applyInOrder(sql, writes);
      await recordInLog(sql, writes);
      await savePosition(sql, next);
    });
    this.advanceTo(next);
    for (const m of markers) for (const listener of this.markerListeners) listener(m);
  }

  /** The master's own writes: already applied in its transaction, just advance memory. */
  advanceTo(position: AppliedPosition): void {
    this.position = { ...position };
    this.statistics.noteAppliedSeq(position.appliedSeq);
    for (const w of this.waiters) {
      if (w.seq <= position.appliedSeq) {
        this.waiters.delete(w);
        w.wake();
      }
    }
  }

  /** Resolves true once `seq` is applied, false after `timeoutMs`. */
  waitFor(seq: number, timeoutMs: number): Promise<boolean> {
    if (seq <= this.position.appliedSeq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        seq,
        wake: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        resolve(false);
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Resolves when the epoch marker `markerId` has been read from the log. */
  waitForMarker(markerId: string): Promise<void> {
    return new Promise((resolve) => {
      const listener = (seen: string) => {
        if (seen !== markerId) return;
        this.markerListeners.delete(listener);
        resolve();
      };
      this.markerListeners.add(listener);
    });
  }
}

/** Applies writes in log order, each run of one operation in a single statement where it can. */
async function applyInOrder(sql: Sql, writes: WriteEntry[]): Promise<void> {
  for (let i = 0; i < writes.length; ) {
    let j = i + 1;
    while (j < writes.length && writes[j].op === writes[i].op) j++;
    const op = writeOperation(writes[i].op);
    const run = writes.slice(i, j).map((w) => w.args);
    if (op.applyMany && run.length > 1) await op.applyMany(sql, run);
    else for (const args of run) await op.apply(sql, args);
    i = j;
  }
}

export async function recordInLog(sql: Sql, entries: WriteEntry[]): Promise<void> {
  if (!entries.length) return;
  await sql.query(
    `INSERT INTO _dbaas_log (seq, epoch, request_id, op, result)
     SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::json[])`,
    [
      entries.map((e) => e.seq),
      entries.map((e) => e.epoch),
      entries.map((e) => e.requestId),
      entries.map((e) => e.op),
      entries.map((e) => JSON.stringify(e.result ?? null)),
    ],
  );
}

export async function savePosition(sql: Sql, p: AppliedPosition): Promise<void> {
  await sql.query('UPDATE _dbaas_state SET applied_seq = $1, epoch = $2, stream_offset = $3', [p.appliedSeq, p.epoch, p.streamOffset]);
}
