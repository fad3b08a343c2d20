import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Pool } from 'pg';
import { conflict, DbaasError, decode, MalformedMessageError, parseArgs, isWriteOp, writeBatchSchema, type ClusterNames, type WriteEntry } from '../schema';
import { type Sql } from './sql';
import { writeOperation, type AnyWriteOperation, type Resolution } from './operations';
import { type Logger } from '../platform';
import { planBatch, type BatchPlan, type EarlierAnswer, type Job, type LoggedWrite, type WriteJob } from './batchPlan';
import type { AppliedPosition } from './database';
import { inTransaction } from './database';
import { BEGIN_ASYNC_COMMIT, PositionMismatchError, recordAndSavePosition, type Replica } from './replica';
import type { LeaderLease } from './lease';
import type { OffsetTracker } from './offsetTracker';
import { readToOwnMarker } from './logEnd';
import { logMessagesOf, publishBody } from './logMessages';
import { prepared } from './preparedSql';
import { deadLetter, idsToAnswer, errorReply, isDatabaseUnavailable, ReplySender } from './rpcReply';

const keyReused = () => conflict('this Idempotency-Key was already used for a different write (another operation or other arguments)');

/** Messages in flight; each holds a batch of writes from one gateway. */
const WRITE_PREFETCH = 256;
/** Writes per transaction, at most (a message is never split). */
const MAX_BATCH = 512;

export interface MasterDeps {
  connection: ChannelModel;
  /** Where this master is in the log stream, recorded with each batch (fast rejoin). */
  offsets?: Pick<OffsetTracker, 'resumeOffset'>;
  /** This master's leadership: nothing is published or acknowledged once it lapsed. */
  lease: Pick<LeaderLease, 'valid' | 'remainingMs'>;
  names: ClusterNames;
  pool: Pool;
  replica: Replica;
  workerId: string;
  /** MAX_RIDERS_PER_RIDE, which joinRide enforces. */
  maxRidersPerRide: number;
  log: Logger;
  failStop: (reason: string) => never;
}

/** A batch's entries, in as many messages as their size needs (./logMessages), all confirmed. */
async function publishEntries(channel: ConfirmChannel, exchange: string, entries: readonly WriteEntry[]): Promise<void> {
  await Promise.all(logMessagesOf(entries).map(({ body, lastSeq }) => publishBody(channel, exchange, body, lastSeq)));
}

/**
 * Fences the log for a new epoch: appends an epoch marker and waits until the tail has
 * read up to it, so every entry an earlier master got confirmed is applied here first.
 */
export async function fenceLog(deps: MasterDeps, epoch: number, sync: ConfirmChannel): Promise<void> {
  await readToOwnMarker(sync, deps.names.syncExchange, deps.replica, { epoch, workerId: deps.workerId });
}

/** A WriteQ message and the writes it carries. */
interface Delivery {
  msg: ConsumeMessage;
  jobs: Job[];
}

/** What the steps of one batch share: its transaction, and the entries and seqs it takes. */
interface BatchContext {
  sql: Sql;
  maxRidersPerRide: number;
  epoch: number;
  workerId: string;
  log: Logger;
  /** The last seq taken so far (the replica's applied seq before the first write). */
  seq: number;
  entries: WriteEntry[];
}

/** Step 1: the position check and what the log table already holds for the batch's request ids. */
async function readLogged(ctx: BatchContext, jobs: WriteJob[], from: AppliedPosition): Promise<Map<string, LoggedWrite>> {
  // The position check comes first, in the dedupe's round trip: a database that lost
  // commits this process counted (a PostgreSQL crash) must not resolve anything.
  const { rows } = await ctx.sql.query(
    `SELECT s.applied_seq, s.stream_offset, d.request_id, d.seq, d.result, d.fingerprint
       FROM _dbaas_state s LEFT JOIN _dbaas_log d ON d.request_id = ANY($1::text[])`,
    [jobs.map((j) => j.request.requestId)],
  );
  if (Number(rows[0].applied_seq) !== from.appliedSeq || Number(rows[0].stream_offset) !== from.streamOffset) {
    throw new PositionMismatchError(`the database is at seq ${String(rows[0].applied_seq)}, this master at ${from.appliedSeq}`);
  }
  const logged = new Map<string, LoggedWrite>();
  for (const d of rows) if (d.request_id !== null) logged.set(d.request_id as string, { result: d.result, seq: Number(d.seq), fingerprint: d.fingerprint as string | null });
  return logged;
}

/** A write that passed its rules: it takes the next seq and an entry. */
function accept(ctx: BatchContext, job: WriteJob, resolved: unknown, result: unknown): void {
  ctx.seq += 1;
  const { requestId, fingerprint, op } = job.request;
  ctx.entries.push({ kind: 'write', epoch: ctx.epoch, seq: ctx.seq, requestId, ...(fingerprint && { fingerprint }), op, args: resolved, result });
  job.reply = { id: requestId, ok: true, workerId: ctx.workerId, result, seq: ctx.seq, appliedSeq: ctx.seq };
}

/** A rule failure changes nothing (resolve only reads); anything else aborts the batch. */
function reject(ctx: BatchContext, job: WriteJob, err: unknown): void {
  if (!(err instanceof DbaasError)) throw err;
  job.reply = errorReply(err, job.request.requestId, ctx.workerId, ctx.seq, ctx.log);
}

function answerEarlier(ctx: BatchContext, job: WriteJob, answer: EarlierAnswer): void {
  const { requestId } = job.request;
  job.reply =
    answer.kind === 'keyReused'
      ? errorReply(keyReused(), requestId, ctx.workerId, ctx.seq, ctx.log)
      : { id: requestId, ok: true, workerId: ctx.workerId, result: answer.logged.result, seq: answer.logged.seq, appliedSeq: ctx.seq };
}

/** Step 2: resolves and applies one run of the plan, each accepted write taking a seq. */
async function applyRun(ctx: BatchContext, run: BatchPlan['runs'][number]): Promise<void> {
  let op: AnyWriteOperation;
  try {
    op = writeOperation(run.op);
  } catch (err) {
    for (const job of run.jobs) reject(ctx, job, err);
    return;
  }
  const parsed: Array<{ job: WriteJob; args: unknown }> = [];
  for (const job of run.jobs) {
    try {
      parsed.push({ job, args: parseArgs(op.args, job.request.args) });
    } catch (err) {
      reject(ctx, job, err);
    }
  }
  if (op.resolveMany && parsed.length > 1) {
    const resolutions = await op.resolveMany(
      ctx.sql,
      parsed.map((p) => p.args),
      ctx.seq + 1,
    );
    const accepted: unknown[] = [];
    resolutions.forEach((resolution, k) => {
      if (resolution instanceof DbaasError) return reject(ctx, parsed[k].job, resolution);
      accepted.push(resolution.resolved);
      accept(ctx, parsed[k].job, resolution.resolved, resolution.result ?? null);
    });
    if (op.applyMany) await op.applyMany(ctx.sql, accepted);
    else for (const resolved of accepted) await op.apply(ctx.sql, resolved);
    return;
  }
  for (const { job, args } of parsed) {
    let resolution: Resolution<unknown, unknown>;
    try {
      resolution = await op.resolve(ctx.sql, args, { seq: ctx.seq + 1, maxRidersPerRide: ctx.maxRidersPerRide });
    } catch (err) {
      reject(ctx, job, err);
      continue;
    }
    await op.apply(ctx.sql, resolution.resolved);
    accept(ctx, job, resolution.resolved, resolution.result ?? (await op.result?.(ctx.sql, resolution.resolved)) ?? null);
  }
}

const resolvesMany = (op: string) => isWriteOp(op) && writeOperation(op).resolveMany !== undefined;

/**
 * The master's write path, in batches (group commit). Per batch, in one transaction: plan
 * it (dedupe by request id, runs of one operation: worker/batchPlan.ts), resolve (rules,
 * generated values) and apply each run; then publish the entries to SyncQ as one message
 * (several if they are large: ./logMessages) and, while the broker confirms, record them
 * in the log table; then commit, reply and ack. A client hears success only after the
 * broker confirmed its entry. Batching
 * amortises the transaction and the confirm wait over every write that arrived while the
 * previous batch was in flight.
 */
export async function startWriteServer(deps: MasterDeps, epoch: number, sync: ConfirmChannel): Promise<void> {
  const { connection, names, pool, replica, workerId, log } = deps;
  const channel = await connection.createChannel();
  await channel.prefetch(WRITE_PREFETCH);
  const replies = new ReplySender(channel, log);

  /** Runs jobs in one transaction; throws (rolled back) on any unexpected failure. */
  const runBatch = async (jobs: Job[]): Promise<void> => {
    const writes = jobs.filter((j): j is WriteJob => j.kind === 'write');
    const from = { appliedSeq: replica.appliedSeq, epoch, streamOffset: replica.streamOffset };
    // Once entries may be in the log, this database must end up holding them too: any
    // failure from there on stops the worker (fail-stop), which then replays the log,
    // rather than rolling back and handing the same seqs to other writes.
    let publishing = false;
    const mustMatchLog = (err: unknown): never => deps.failStop(`write batch failed after publishing: ${(err as Error).message}`);
    const committed = await inTransaction(
      pool,
      log,
      async (client) => {
        const ctx: BatchContext = { sql: prepared(client), maxRidersPerRide: deps.maxRidersPerRide, epoch, workerId, log, seq: from.appliedSeq, entries: [] };
        const plan = planBatch(writes, await readLogged(ctx, writes, from), resolvesMany);
        for (const { job, answer } of plan.answered) answerEarlier(ctx, job, answer);
        for (const run of plan.runs) await applyRun(ctx, run);
        for (const { job, leader } of plan.followers) job.reply = leader.reply;

        // Step 3: publish and record, then commit (inTransaction).
        const position = { appliedSeq: ctx.seq, epoch, streamOffset: deps.offsets?.resumeOffset(from.appliedSeq) ?? from.streamOffset };
        if (!deps.lease.valid) deps.failStop(`leadership lease lapsed ${-deps.lease.remainingMs} ms ago; not publishing`);
        publishing = ctx.entries.length > 0;
        // Confirmed within the lease, the entries precede any newer master's epoch marker
        // (worker/lease.ts); confirmed later, replicas may skip them: never acknowledge those.
        const confirmed = publishing
          ? publishEntries(sync, names.syncExchange, ctx.entries).then(() => {
              if (!deps.lease.valid) throw new Error(`the broker confirmed ${-deps.lease.remainingMs} ms after the leadership lease lapsed`);
            })
          : Promise.resolve();
        // The broker persists the entries while PostgreSQL records them: the confirm and the
        // statement overlap, and COMMIT waits for both.
        const recorded = recordAndSavePosition(ctx.sql, ctx.entries, position); // the position was checked by readLogged
        await Promise.all([confirmed, recorded]).catch(mustMatchLog);
        return { position, entries: ctx.entries };
      },
      BEGIN_ASYNC_COMMIT,
    ).catch((err: unknown) => {
      if (publishing) return mustMatchLog(err);
      throw err;
    });
    replica.advanceTo(committed.position);
    if (log.isLevelEnabled('debug')) for (const e of committed.entries) log.debug({ seq: e.seq, requestId: e.requestId, op: e.op }, 'write committed');
  };

  const decodeJobs = (msg: ConsumeMessage): Job[] => {
    const { replyTo } = msg.properties as { replyTo?: string };
    try {
      return decode(writeBatchSchema, msg.content).writes.map((request): Job => ({ kind: 'write', replyTo, request }));
    } catch (err) {
      if (err instanceof MalformedMessageError) deadLetter(channel, names.deadLetters, msg, err.message, workerId);
      return idsToAnswer(msg, 'writes', 'requestId').map((id): Job => ({ kind: 'undecoded', replyTo, reply: errorReply(err, id, workerId, replica.appliedSeq, log) }));
    }
  };

  const runJobs = async (jobs: Job[]): Promise<void> => {
    try {
      const started = performance.now();
      await runBatch(jobs);
      log.debug({ size: jobs.length, ms: Math.round(performance.now() - started) }, 'write batch committed');
    } catch (err) {
      // PostgreSQL lost commits this process already counted (a crash of the database):
      // restart from what the database holds and replay the log.
      if (err instanceof PositionMismatchError) deps.failStop(`write position lost: ${err.message}`);
      // This master's database is gone (its own PostgreSQL died, a full disk): answering
      // UNAVAILABLE would fail writes another master could take. Stop without acking them:
      // they stay in WriteQ for the next master.
      if (isDatabaseUnavailable(err)) deps.failStop(`database unavailable: ${(err as Error).message}`);
      const decoded = jobs.filter((j): j is WriteJob => j.kind === 'write');
      if (decoded.length === 1) {
        decoded[0].reply = errorReply(err, decoded[0].request.requestId, workerId, replica.appliedSeq, log);
      } else {
        // One write failed unexpectedly: retry one by one so only that write fails.
        log.warn({ err, size: jobs.length }, 'write batch failed; retrying its writes one by one');
        for (const job of decoded) {
          job.reply = undefined;
          await runJobs([job]);
        }
        for (const job of jobs) if (job.kind === 'undecoded') replies.send(job.replyTo, job.reply);
        return;
      }
    }
    for (const job of jobs) if (job.reply) replies.send(job.replyTo, job.reply);
  };

  let buffer: Delivery[] = [];
  let draining: Promise<void> | null = null;
  const drainLoop = async () => {
    try {
      while (buffer.length) {
        let taken = 0;
        let writes = 0;
        while (taken < buffer.length && (taken === 0 || writes + buffer[taken].jobs.length <= MAX_BATCH)) writes += buffer[taken++].jobs.length;
        const batch = buffer.slice(0, taken);
        buffer = buffer.slice(taken);
        await runJobs(batch.flatMap((d) => d.jobs));
        replies.ack(batch[batch.length - 1].msg, true);
      }
    } catch (err) {
      // runJobs answers every failure of a write; anything else would stall WriteQ silently.
      deps.failStop(`write loop failed: ${(err as Error).message}`);
    } finally {
      draining = null;
    }
  };
  await channel.consume(names.writeQ, (msg) => {
    if (!msg) return deps.failStop('WriteQ consumer was cancelled by the broker');
    buffer.push({ msg, jobs: decodeJobs(msg) });
    draining ??= drainLoop();
  });
  log.info({ epoch, appliedSeq: replica.appliedSeq }, 'serving writes');
}
