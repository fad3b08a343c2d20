import { randomUUID } from 'node:crypto';
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Pool } from 'pg';
import {
  conflict,
  DbaasError,
  decode,
  MalformedMessageError,
  encode,
  parseArgs,
  writeOperation,
  writeBatchSchema,
  type AnyWriteOperation,
  type ClusterNames,
  type LogMessage,
  type Logger,
  type Resolution,
  type RpcReply,
  type WriteEntry,
  type WriteRequest,
} from '../schema';
import { inTransaction } from './database';
import { BEGIN_ASYNC_COMMIT, PositionMismatchError, recordInLog, savePosition, type Replica } from './replica';
import type { LeaderLease } from './lease';
import { LAST_SEQ_HEADER, type OffsetTracker } from './offsetTracker';
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
  log: Logger;
  failStop: (reason: string) => never;
}

function publishConfirmed(channel: ConfirmChannel, exchange: string, message: LogMessage): Promise<void> {
  const last = message.kind === 'writes' ? message.entries.at(-1)?.seq : message.kind === 'write' ? message.seq : undefined;
  const headers = last === undefined ? undefined : { [LAST_SEQ_HEADER]: last };
  return new Promise((resolve, reject) => {
    channel.publish(exchange, '', encode(message), { persistent: true, contentType: 'application/json', headers }, (err) =>
      err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
    );
  });
}

/**
 * Fences the log for a new epoch: appends an epoch marker and waits until the tail has
 * read up to it, so every entry an earlier master got confirmed is applied here first.
 */
export async function fenceLog(deps: MasterDeps, epoch: number, sync: ConfirmChannel): Promise<void> {
  const markerId = randomUUID();
  const seen = deps.replica.waitForMarker(markerId);
  await publishConfirmed(sync, deps.names.syncExchange, { kind: 'epoch', epoch, workerId: deps.workerId, markerId });
  await seen;
}

/** A decoded write with what the master decided for it. */
interface WriteJob {
  replyTo?: string;
  request: WriteRequest | null;
  reply?: RpcReply;
}

/** A WriteQ message and the writes it carries. */
interface Delivery {
  msg: ConsumeMessage;
  jobs: WriteJob[];
}

/**
 * The master's write path, in batches (group commit). Per batch, in one transaction: for
 * each write in arrival order, dedupe by request id, resolve (rules, generated values),
 * apply; then publish the entries to SyncQ as one message and, while the broker confirms
 * it, record them in the log table; then commit, reply and ack. A client hears success
 * only after the broker confirmed its entry. Batching amortises the transaction and the confirm wait
 * over every write that arrived while the previous batch was in flight.
 */
export async function startWriteServer(deps: MasterDeps, epoch: number, sync: ConfirmChannel): Promise<void> {
  const { connection, names, pool, replica, workerId, log } = deps;
  const channel = await connection.createChannel();
  await channel.prefetch(WRITE_PREFETCH);
  const replies = new ReplySender(channel, log);

  /** Runs jobs in one transaction; throws (rolled back) on any unexpected failure. */
  const runBatch = async (jobs: WriteJob[]): Promise<void> => {
    const live = jobs.filter((j) => j.request);
    const from = { appliedSeq: replica.appliedSeq, epoch, streamOffset: replica.streamOffset };
    // Once entries may be in the log, this database must end up holding them too: any
    // failure from there on stops the worker (fail-stop), which then replays the log,
    // rather than rolling back and handing the same seqs to other writes.
    let publishing = false;
    const mustMatchLog = (err: unknown): never => deps.failStop(`write batch failed after publishing: ${(err as Error).message}`);
    const committed = await inTransaction(pool, log, async (client) => {
      const sql = prepared(client);
      const seen = new Map<string, { result: unknown; seq: number; fingerprint: string | null }>();
      // The position check comes first, in the dedupe's round trip: a database that lost
      // commits this process counted (a PostgreSQL crash) must not resolve anything.
      const { rows } = await sql.query(
        `SELECT s.applied_seq, s.stream_offset, d.request_id, d.seq, d.result, d.fingerprint
           FROM _dbaas_state s LEFT JOIN _dbaas_log d ON d.request_id = ANY($1::text[])`,
        [live.map((j) => j.request!.requestId)],
      );
      if (Number(rows[0].applied_seq) !== from.appliedSeq || Number(rows[0].stream_offset) !== from.streamOffset) {
        throw new PositionMismatchError(`the database is at seq ${String(rows[0].applied_seq)}, this master at ${from.appliedSeq}`);
      }
      for (const d of rows) if (d.request_id !== null) seen.set(String(d.request_id), { result: d.result, seq: Number(d.seq), fingerprint: d.fingerprint as string | null });

      const entries: WriteEntry[] = [];
      let seq = replica.appliedSeq;
      const accept = (job: WriteJob, resolved: unknown, result: unknown) => {
        seq += 1;
        const request = job.request!;
        entries.push({ kind: 'write', epoch, seq, requestId: request.requestId, ...(request.fingerprint && { fingerprint: request.fingerprint }), op: request.op, args: resolved, result });
        job.reply = { id: request.requestId, ok: true, workerId, result, seq, appliedSeq: seq };
      };
      const reject = (job: WriteJob, err: unknown) => {
        // Rule failures change nothing (resolve only reads); anything else aborts the batch.
        if (!(err instanceof DbaasError)) throw err;
        job.reply = errorReply(err, job.request!.requestId, workerId, seq, log);
      };

      // A request id seen before (in the log, or earlier in this batch) gets that answer,
      // unless a client's Idempotency-Key now comes with other arguments.
      const leaders = new Map<string, WriteJob>();
      const followers: Array<[WriteJob, WriteJob]> = [];
      const work: Array<{ job: WriteJob; request: WriteRequest }> = [];
      for (const job of live) {
        const request = job.request!;
        const logged = seen.get(request.requestId);
        const leader = leaders.get(request.requestId);
        const earlier = logged?.fingerprint ?? leader?.request?.fingerprint;
        if ((logged || leader) && (earlier ?? null) !== (request.fingerprint ?? null)) job.reply = errorReply(keyReused(), request.requestId, workerId, seq, log);
        else if (logged) job.reply = { id: request.requestId, ok: true, workerId, result: logged.result, seq: logged.seq, appliedSeq: seq };
        else if (leader) followers.push([job, leader]);
        else {
          leaders.set(request.requestId, job);
          work.push({ job, request });
        }
      }

      for (let i = 0; i < work.length; ) {
        let op: AnyWriteOperation;
        try {
          op = writeOperation(work[i].request.op);
        } catch (err) {
          reject(work[i].job, err);
          i += 1;
          continue;
        }
        // Consecutive writes of an operation that can resolve many at once go together.
        let j = i + 1;
        if (op.resolveMany) while (j < work.length && work[j].request.op === work[i].request.op) j++;
        const run: Array<{ job: WriteJob; args: unknown }> = [];
        for (const { job, request } of work.slice(i, j)) {
          try {
            run.push({ job, args: parseArgs(op.args, request.args) });
          } catch (err) {
            reject(job, err);
          }
        }
        i = j;
        if (op.resolveMany && run.length > 1) {
          const resolutions = await op.resolveMany(sql, run.map((r) => r.args), seq + 1);
          const accepted: unknown[] = [];
          resolutions.forEach((resolution, k) => {
            if (resolution instanceof DbaasError) return reject(run[k].job, resolution);
            accepted.push(resolution.resolved);
            accept(run[k].job, resolution.resolved, resolution.result ?? null);
          });
          if (op.applyMany) await op.applyMany(sql, accepted);
          else for (const resolved of accepted) await op.apply(sql, resolved);
          continue;
        }
        for (const { job, args } of run) {
          let resolution: Resolution<unknown, unknown>;
          try {
            resolution = await op.resolve(sql, args, { seq: seq + 1 });
          } catch (err) {
            reject(job, err);
            continue;
          }
          await op.apply(sql, resolution.resolved);
          accept(job, resolution.resolved, resolution.result ?? (await op.result?.(sql, resolution.resolved)) ?? null);
        }
      }
      for (const [follower, leader] of followers) follower.reply = leader.reply;
      const position = { appliedSeq: seq, epoch, streamOffset: deps.offsets?.resumeOffset(from.appliedSeq) ?? from.streamOffset };
      // The broker persists the entries while PostgreSQL records them: the confirm and the
      // two statements overlap, and COMMIT waits for both.
      if (!deps.lease.valid) deps.failStop(`leadership lease lapsed ${-deps.lease.remainingMs} ms ago; not publishing`);
      publishing = entries.length > 0;
      // Confirmed within the lease, the entries precede any newer master's epoch marker
      // (worker/lease.ts); confirmed later, replicas may skip them: never acknowledge those.
      const confirmed = publishing
        ? publishConfirmed(sync, names.syncExchange, { kind: 'writes', entries }).then(() => {
            if (!deps.lease.valid) throw new Error(`the broker confirmed ${-deps.lease.remainingMs} ms after the leadership lease lapsed`);
          })
        : Promise.resolve();
      const recorded = (async () => {
        await recordInLog(sql, entries);
        await savePosition(sql, position); // checked by the first statement
      })();
      await Promise.all([confirmed, recorded]).catch(mustMatchLog);
      return { position, entries };
    }, BEGIN_ASYNC_COMMIT).catch((err: unknown) => (publishing ? mustMatchLog(err) : Promise.reject(err)));
    replica.advanceTo(committed.position);
    if (log.isLevelEnabled('debug')) for (const e of committed.entries) log.debug({ seq: e.seq, requestId: e.requestId, op: e.op }, 'write committed');
  };

  const decodeJobs = (msg: ConsumeMessage): WriteJob[] => {
    const { replyTo } = msg.properties as { replyTo?: string };
    try {
      return decode(writeBatchSchema, msg.content).writes.map((request) => ({ replyTo, request }));
    } catch (err) {
      if (err instanceof MalformedMessageError) deadLetter(channel, names.deadLetters, msg, err.message, workerId);
      return idsToAnswer(msg, 'writes', 'requestId').map((id) => ({ replyTo, request: null, reply: errorReply(err, id, workerId, replica.appliedSeq, log) }));
    }
  };

  const runJobs = async (jobs: WriteJob[]): Promise<void> => {
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
      const decoded = jobs.filter((j) => j.request);
      if (decoded.length === 1) {
        decoded[0].reply = errorReply(err, decoded[0].request!.requestId, workerId, replica.appliedSeq, log);
      } else {
        // One write failed unexpectedly: retry one by one so only that write fails.
        log.warn({ err, size: jobs.length }, 'write batch failed; retrying its writes one by one');
        for (const job of decoded) {
          job.reply = undefined;
          await runJobs([job]);
        }
        for (const job of jobs) if (!job.request && job.reply) replies.send(job.replyTo, job.reply);
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
        channel.ack(batch[batch.length - 1].msg, true);
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
