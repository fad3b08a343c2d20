import type { Pool } from 'pg';
import { entryVerdict, type LogEntry, type WriteEntry } from '../schema';
import { type Sql } from './sql';
import { textArray, writeOperation } from './operations';
import { type Logger } from '../platform';
import { inTransaction, readPosition, type AppliedPosition } from './database';
import { prepared } from './preparedSql';
import type { StatisticsKeeper } from './statistics';

export interface OffsetEntry {
  entry: LogEntry;
  /** The entry's offset in SyncQ's log stream. */
  offset: number;
}

/**
 * A batch this large means the replica is working through a backlog (catching up, or a
 * long burst): live tailing applies one master batch at a time, which is at most 512
 * entries and far fewer at ordinary load.
 */
const BULK_BATCH = 500;

/**
 * Workers commit without waiting for their WAL flush. That is safe because a commit holds
 * nothing that is not already in the durable log (a replica applies what it read from
 * it; the master commits only after the broker confirmed its entries): if PostgreSQL
 * crashes and loses the last few commits, it loses their position with them (same
 * transaction), and the worker replays those entries from the stream. A worker that
 * outlived such a crash would find its position behind its memory: recordAndSavePosition checks
 * the position it advances from, so that worker stops and restarts from the database
 * instead of skipping entries.
 */
export const BEGIN_ASYNC_COMMIT = 'BEGIN; SET LOCAL synchronous_commit = off';

export class LogGapError extends Error {
  readonly code = 'LOG_GAP';
}

export class PositionMismatchError extends Error {
  readonly code = 'POSITION_MISMATCH';
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
  private suspect = false;
  private verifying: Promise<void> | null = null;

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
      // A fenced-off master's late entries, or entries applied before a restart, are skipped.
      const verdict = entryVerdict(next, entry);
      if (verdict === 'skip') continue;
      if (verdict === 'gap') throw new LogGapError(`log gap: applied ${next.appliedSeq}, next entry is ${entry.seq}`);
      writes.push(entry);
      next.appliedSeq = entry.seq;
      next.epoch = Math.max(next.epoch, entry.epoch);
    }
    await inTransaction(
      this.pool,
      this.log,
      async (client) => {
        const sql = prepared(client);
        await applyInOrder(sql, writes);
        await recordAndSavePosition(sql, writes, next, this.position);
      },
      BEGIN_ASYNC_COMMIT,
    );
    this.advanceTo(next, batch.length >= BULK_BATCH);
    for (const m of markers) for (const listener of this.markerListeners) listener(m);
  }

  /** The master's own writes: already applied in its transaction, just advance memory. */
  advanceTo(position: AppliedPosition, bulk = false): void {
    this.position = { ...position };
    this.statistics.noteAppliedSeq(position.appliedSeq, bulk);
    for (const w of this.waiters) {
      if (w.seq <= position.appliedSeq) {
        this.waiters.delete(w);
        w.wake();
      }
    }
  }

  /**
   * PostgreSQL dropped connections (a restart, or a crash that may have lost the last
   * asynchronous commits): until checked, the database may be behind this memory.
   */
  suspectPosition(): void {
    this.suspect = true;
  }

  /**
   * Resolves once the database is known to hold at least what this process counts as
   * applied (a slave checks before answering reads); throws PositionMismatchError if it
   * lost commits, and the database's own error while it is unreachable.
   */
  async verified(): Promise<void> {
    if (!this.suspect) return;
    this.verifying ??= (async () => {
      try {
        const stored = await readPosition(this.pool);
        if (stored.appliedSeq < this.position.appliedSeq) {
          throw new PositionMismatchError(`the database is at seq ${stored.appliedSeq}, this process applied ${this.position.appliedSeq}`);
        }
        this.suspect = false;
      } finally {
        this.verifying = null;
      }
    })();
    return this.verifying;
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
  for (let i = 0; i < writes.length;) {
    let j = i + 1;
    while (j < writes.length && writes[j].op === writes[i].op) j++;
    const op = writeOperation(writes[i].op);
    const run = writes.slice(i, j).map((w) => w.args);
    if (op.applyMany && run.length > 1) await op.applyMany(sql, run);
    else for (const args of run) await op.apply(sql, args);
    i = j;
  }
}

/**
 * The entries with no later one of the same request id: one statement may not update a
 * row twice, and a catch-up applies many batches at once, which may span a key's reuse.
 */
export function latestPerRequestId(entries: WriteEntry[]): WriteEntry[] {
  const last = new Map<string, number>();
  entries.forEach((e, i) => last.set(e.requestId, i));
  return last.size === entries.length ? entries : entries.filter((e, i) => last.get(e.requestId) === i);
}

/**
 * Records `entries` in the log table and the new position in one statement: one round
 * trip to PostgreSQL where two had been (each costs both processes a wakeup). PostgreSQL
 * runs a data-modifying WITH whether or not the UPDATE reads it. With `from`, only if the
 * database is still at `from`.
 */
export async function recordAndSavePosition(sql: Sql, entries: WriteEntry[], p: AppliedPosition, from?: AppliedPosition): Promise<void> {
  const values: unknown[] = [p.appliedSeq, p.epoch, p.streamOffset];
  let text = 'UPDATE _dbaas_state SET applied_seq = $1, epoch = $2, stream_offset = $3';
  if (from) {
    values.push(from.appliedSeq, from.streamOffset);
    text += ' WHERE applied_seq = $4 AND stream_offset = $5';
  }
  if (entries.length) {
    const n = values.length;
    const arrays = ['bigint', 'int', 'text', 'text', 'json', 'text'].map((type, i) => `$${n + i + 1}::${type}[]`);
    // A request id the master forgot (past the idempotency window) is a new write there, but
    // a replica trims by its own clock and may still hold it: the new write replaces it, as
    // on the master. A unique violation here would stop the replica on every restart.
    text =
      `WITH logged AS (INSERT INTO _dbaas_log (seq, epoch, request_id, op, result, fingerprint) SELECT * FROM unnest(${arrays.join(', ')})` +
      ' ON CONFLICT (request_id) DO UPDATE SET seq = EXCLUDED.seq, epoch = EXCLUDED.epoch, op = EXCLUDED.op, result = EXCLUDED.result,' +
      ` fingerprint = EXCLUDED.fingerprint, applied_at = now()) ${text}`;
    entries = latestPerRequestId(entries);
    values.push(
      entries.map((e) => e.seq),
      entries.map((e) => e.epoch),
      textArray(entries.map((e) => e.requestId)),
      textArray(entries.map((e) => e.op)),
      textArray(entries.map((e) => JSON.stringify(e.result ?? null))),
      textArray(entries.map((e) => e.fingerprint ?? null)),
    );
  }
  const { rowCount } = await sql.query(text, values);
  if (from && rowCount !== 1) throw new PositionMismatchError(`the database is no longer at seq ${from.appliedSeq}, offset ${from.streamOffset}`);
}
