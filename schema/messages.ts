import { z } from 'zod';
import { ERROR_CODES } from './errors';
import { WORKER_ROLES } from './records';

/**
 * The message contracts of the four queues. Both sides encode and decode through these
 * schemas, so a malformed message is rejected at the edge with a reason.
 */

/**
 * RPC messages carry batches: a gateway sends every read (or write) that arrived in the
 * same turn of its event loop as one message, and a worker answers everything it finished
 * in one turn for one gateway as one message. Under load this divides the broker's
 * per-message work, and the syscalls on both ends, by the batch size; an idle system
 * sends batches of one and waits for nothing.
 */

/** One read on ReadQ (gateway → any slave). */
export const readRequestSchema = z.object({
  /** Correlates the reply. */
  id: z.string().min(1).max(64),
  op: z.string(),
  args: z.unknown(),
  /** The slave answers only once it has applied at least this seq (read-your-writes). */
  minSeq: z.number().int().min(0),
  consistency: z.enum(['strong', 'eventual']),
});
export type ReadRequest = z.infer<typeof readRequestSchema>;
export const MAX_RPC_BATCH = 256;
export const readBatchSchema = z.object({ reads: z.array(readRequestSchema).min(1).max(MAX_RPC_BATCH) });
export type ReadBatch = z.infer<typeof readBatchSchema>;

/** One write on WriteQ (gateway → the master). */
export const writeRequestSchema = z.object({
  /**
   * Correlates the reply, and the master's log dedupes on it (exactly-once effect): a
   * UUID per write, or, for a client's Idempotency-Key, `k:` and a digest of the key.
   */
  requestId: z.string().min(8).max(80),
  op: z.string(),
  args: z.unknown(),
  /**
   * With an Idempotency-Key: a digest of the operation and the client's arguments. The
   * same request id with another fingerprint is CONFLICT, not the earlier answer.
   */
  fingerprint: z.string().max(64).optional(),
});
export type WriteRequest = z.infer<typeof writeRequestSchema>;
export const writeBatchSchema = z.object({ writes: z.array(writeRequestSchema).min(1).max(MAX_RPC_BATCH) });
export type WriteBatch = z.infer<typeof writeBatchSchema>;

const replyError = z.object({ code: z.enum(ERROR_CODES), message: z.string() });

/** One answer on ResponseQ (worker → the gateway that asked), for the request `id`. */
export const rpcReplySchema = z.discriminatedUnion('ok', [
  z.object({
    id: z.string(),
    ok: z.literal(true),
    workerId: z.string(),
    result: z.unknown(),
    /** For writes: the log position of this write. */
    seq: z.number().int().optional(),
    appliedSeq: z.number().int(),
  }),
  z.object({
    id: z.string(),
    ok: z.literal(false),
    workerId: z.string(),
    error: replyError,
    /** A slave behind minSeq says so, and the gateway tries again (maybe elsewhere). */
    lagging: z.boolean().optional(),
    appliedSeq: z.number().int(),
  }),
]);
export type RpcReply = z.infer<typeof rpcReplySchema>;
export const replyBatchSchema = z.object({ replies: z.array(rpcReplySchema).min(1) });
export type ReplyBatch = z.infer<typeof replyBatchSchema>;

/** SyncQ: the durable log. Args and result are fully resolved by the master. */
export const writeEntrySchema = z.object({
  kind: z.literal('write'),
  epoch: z.number().int().min(0),
  seq: z.number().int().min(1),
  requestId: z.string(),
  /** Kept with the entry on every replica, so a new master checks a retried key as the old one did. */
  fingerprint: z.string().optional(),
  op: z.string(),
  args: z.unknown(),
  result: z.unknown(),
});
export const epochMarkerSchema = z.object({
  kind: z.literal('epoch'),
  epoch: z.number().int().min(1),
  workerId: z.string(),
  /** Unique per promotion, so the new master recognises its own marker. */
  markerId: z.string(),
});
export const logEntrySchema = z.discriminatedUnion('kind', [writeEntrySchema, epochMarkerSchema]);
export type WriteEntry = z.infer<typeof writeEntrySchema>;
export type EpochMarker = z.infer<typeof epochMarkerSchema>;
export type LogEntry = z.infer<typeof logEntrySchema>;

/**
 * One SyncQ message: the master publishes each batch's writes, in seq order, as one
 * `writes` message (one publish and one confirm per batch, one delivery per replica);
 * a single `write` is what logs written before batching hold. Replicas apply a message
 * whole, in one transaction, so its entries share its stream offset.
 */
export const writeRunSchema = z.object({ kind: z.literal('writes'), entries: z.array(writeEntrySchema).min(1) });
export const logMessageSchema = z.discriminatedUnion('kind', [writeEntrySchema, epochMarkerSchema, writeRunSchema]);
export type LogMessage = z.infer<typeof logMessageSchema>;

export function entriesOf(message: LogMessage): LogEntry[] {
  return message.kind === 'writes' ? message.entries : [message];
}

/** ZooKeeper: the data of each worker's membership znode. */
export const workerRoleSchema = z.enum(WORKER_ROLES);
export const memberDataSchema = z.object({
  id: z.string(),
  pid: z.number().int(),
  containerId: z.string().nullable(),
  /** The machine it runs on; absent from workers of earlier versions. */
  host: z.string().nullable().default(null),
  role: workerRoleSchema,
  appliedSeq: z.number().int(),
  epoch: z.number().int(),
  startedAt: z.string(),
  /** A master's lease (worker/lease.ts), so the orchestrator knows when it has surely lapsed; null otherwise. */
  leaseMs: z.number().int().positive().nullable().default(null),
});
export type MemberData = z.infer<typeof memberDataSchema>;

/**
 * A master's lease (worker/lease.ts): two thirds of the session timeout, renewed four
 * times per lease. A third of the session timeout is left for the two machines' clocks
 * and for scheduling, and a single slow renewal does not cost the lease.
 */
export function leaseTimings(sessionTimeoutMs: number): { leaseMs: number; checkEveryMs: number } {
  const leaseMs = Math.floor((sessionTimeoutMs * 2) / 3);
  return { leaseMs, checkEveryMs: Math.max(50, Math.floor(leaseMs / 4)) };
}

/**
 * How long, on the orchestrator's clock, a worker's membership znode must have kept one
 * version before the orchestrator may remove it and the worker's candidacy (the version
 * checked in the same write): a master's lease and an eighth more for two clocks' rates.
 * Nothing else needs covering: the wait counts from a read that had returned the version,
 * so from after the renewal that wrote it had started.
 */
export function releaseAfterMs(leaseMs: number): number {
  return Math.ceil(leaseMs * 1.125);
}
/**
 * How often a worker refreshes its membership znode. Once it serves (master or slave) it
 * writes it every time, changed or not: its heartbeat, which the orchestrator's watchdog
 * follows (gateway/workerWatchdog.ts).
 */
export const MEMBER_UPDATE_INTERVAL_MS = 250;

export function encode(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** JSON text as a value, or null when it is not JSON (the caller's schema then refuses it). */
export function parseJsonOrNull(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    if (err instanceof SyntaxError) return null;
    throw err;
  }
}

export class MalformedMessageError extends Error {
  readonly code = 'MALFORMED_MESSAGE';
}

export function decode<T>(schema: z.ZodType<T>, body: Buffer): T {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new MalformedMessageError(`not JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new MalformedMessageError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return parsed.data;
}

/**
 * SnapshotQ: a worker's replicated state, streamed to a worker that bootstraps. Each part's
 * description travels in the `SNAPSHOT_PART_HEADER` header; a `rows` part's body is
 * PostgreSQL COPY text for `columns` of `table`. The receiver grants credit on
 * `creditQueue` as it applies parts, and the sender never runs more than `window` ahead.
 */
export const SNAPSHOT_TABLES = ['users', 'rides', 'ride_riders', '_dbaas_log'] as const;
export const SNAPSHOT_PART_HEADER = 'x-ridedb-snapshot';
const sqlIdentifier = z.string().regex(/^[a-z_][a-z0-9_]*$/);
export const snapshotPartSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('begin'),
    workerId: z.string(),
    appliedSeq: z.number().int(),
    epoch: z.number().int(),
    streamOffset: z.number().int(),
    creditQueue: z.string(),
    window: z.number().int().positive(),
  }),
  z.object({ kind: z.literal('rows'), part: z.number().int().positive(), table: z.enum(SNAPSHOT_TABLES), columns: z.array(sqlIdentifier).min(1) }),
  z.object({ kind: z.literal('end'), parts: z.number().int(), rows: z.number().int() }),
  z.object({ kind: z.literal('abort'), reason: z.string() }),
]);
/** Receiver → sender: every part up to `received` is applied. */
export const snapshotCreditSchema = z.object({ received: z.number().int() });
export type SnapshotPart = z.infer<typeof snapshotPartSchema>;
