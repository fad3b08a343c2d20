import type { Pool, PoolClient } from 'pg';
import { isWriteOp, writeOperations, type LogEntry, type Logger, type WriteEntry } from '../schema';
import type { AppliedPosition } from './database';

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
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
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
        await applyWrite(client, entry);
        next.appliedSeq = entry.seq;
        next.epoch = Math.max(next.epoch, entry.epoch);
      }
      await savePosition(client, next);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: Error) => this.log.error({ err: rollbackErr }, 'rollback failed'));
      throw err;
    } finally {
      client.release();
    }
    this.advanceTo(next);
    for (const m of markers) for (const listener of this.markerListeners) listener(m);
  }

  /** The master's own writes: already applied in its transaction, just advance memory. */
  advanceTo(position: AppliedPosition): void {
    this.position = { ...position };
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

export async function applyWrite(client: PoolClient, entry: WriteEntry): Promise<void> {
  if (!isWriteOp(entry.op)) throw new Error(`log entry ${entry.seq} names unknown operation ${entry.op}`);
  const op = writeOperations[entry.op] as { apply(sql: PoolClient, resolved: unknown): Promise<unknown> };
  await op.apply(client, entry.args);
  await recordInLog(client, entry);
}

export async function recordInLog(client: PoolClient, entry: WriteEntry): Promise<void> {
  await client.query('INSERT INTO _dbaas_log (seq, epoch, request_id, op, args, result) VALUES ($1, $2, $3, $4, $5, $6)', [
    entry.seq,
    entry.epoch,
    entry.requestId,
    entry.op,
    JSON.stringify(entry.args),
    JSON.stringify(entry.result ?? null),
  ]);
}

export async function savePosition(client: PoolClient, p: AppliedPosition): Promise<void> {
  await client.query('UPDATE _dbaas_state SET applied_seq = $1, epoch = $2, stream_offset = $3', [p.appliedSeq, p.epoch, p.streamOffset]);
}
