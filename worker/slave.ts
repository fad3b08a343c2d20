import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { Client, type Pool } from 'pg';
import {
  DbaasError,
  unavailable,
  decode,
  MalformedMessageError,
  parseArgs,
  readBatchSchema,
  selectionArgsSchema,
  type ClusterNames,
  type FieldSelection,
  type ReadRequest,
  type RpcReply,
} from '../schema';
import { readOperation, type ReadContext } from './operations';
import { runSelections, runSelectionsAt, selectionStatement } from './selectionSql';
import type { Sql } from './sql';
import { type Logger } from '../platform';
import { prepared } from './preparedSql';
import { logConnectionLoss } from './database';
import { PositionMismatchError, type Replica } from './replica';
import { deadLetter, idsToAnswer, errorReply, isDatabaseUnavailable, ReplySender } from './rpcReply';

/** How long a slave waits to catch up to a read's minSeq before saying it lags. */
const LAG_WAIT_MS = 200;
/** Messages in flight; each holds a batch of reads. */
const PREFETCH = 32;

export interface ReadServer {
  stop(): Promise<void>;
}

/** PostgreSQL's SQLSTATE for a statement cancelled on request. */
const QUERY_CANCELED = '57014';

/**
 * Runs statements on one pooled connection, cancelled in PostgreSQL once the deadline (the
 * batch's AMQP expiration, counted from delivery) has passed: the gateway has answered
 * UNAVAILABLE by then, and an abandoned read must stop costing the replica.
 */
async function withDeadline<T>(pool: Pool, deadline: number | null, what: string, log: Logger, run: (sql: Sql) => Promise<T>): Promise<T> {
  if (deadline === null) return run(prepared(pool));
  const client = await pool.connect();
  // The failed query reaches the caller, which answers UNAVAILABLE and suspects the position.
  const stopLogging = logConnectionLoss(client, log, what);
  // A holder, not a `let`: TypeScript cannot see the timer's assignment.
  const cancel: { pending?: Promise<void> } = {};
  const timer = setTimeout(
    () => {
      cancel.pending = cancelBackend(pool, (client as unknown as { processID: number }).processID, log);
    },
    Math.max(1, deadline - Date.now()),
  );
  try {
    return await run(prepared(client));
  } catch (err) {
    if (cancel.pending && (err as { code?: string }).code === QUERY_CANCELED) throw unavailable(`${what} passed its deadline and was cancelled`);
    throw err;
  } finally {
    clearTimeout(timer);
    // A cancel in flight must land before the connection serves its next query.
    if (cancel.pending) await cancel.pending;
    stopLogging();
    client.release();
  }
}

function runRead(pool: Pool, request: ReadRequest, deadline: number | null, ctx: ReadContext, log: Logger): Promise<unknown> {
  const op = readOperation(request.op);
  const args = parseArgs(op.args, request.args);
  return withDeadline(pool, deadline, `read ${request.op}`, log, (sql) => op.run(sql, args, ctx));
}

/**
 * Selections of one shape (the same statement text but for parameters) answered together,
 * at most this many to a statement: one PostgreSQL round trip instead of one each, while
 * the pool's other connections still work side by side (bench/NOTES.md, *Uncached reads*).
 * A shape so has up to three statement texts (one, two, three reads), each prepared like
 * any other (worker/preparedSql.ts bounds how many).
 */
export const SELECTIONS_PER_STATEMENT = 3;

/** A selection, with its arguments checked, that its slave has applied far enough to answer. */
export interface ReadySelection {
  request: ReadRequest;
  fields: FieldSelection[];
}

/**
 * Ready selections in groups of one op and statement shape, at most SELECTIONS_PER_STATEMENT
 * to a group. A selection whose statement cannot be built (a field or argument the catalogue
 * refuses) is a group of its own: answered alone, its error is its own.
 */
export function selectionGroups(reads: readonly ReadySelection[]): ReadySelection[][] {
  const byShape = new Map<string, ReadySelection[]>();
  const refused: ReadySelection[][] = [];
  for (const read of reads) {
    let shape: string;
    try {
      shape = selectionStatement(read.fields, read.request.op === 'selectionAt').text;
    } catch (err) {
      if (!(err instanceof DbaasError)) throw err;
      refused.push([read]);
      continue;
    }
    const group = byShape.get(shape);
    if (group) group.push(read);
    else byShape.set(shape, [read]);
  }
  const groups = refused;
  for (const group of byShape.values()) for (let i = 0; i < group.length; i += SELECTIONS_PER_STATEMENT) groups.push(group.slice(i, i + SELECTIONS_PER_STATEMENT));
  return groups;
}

/** pg_cancel_backend on a connection of its own: the pool may be full of the reads to cancel. */
async function cancelBackend(pool: Pool, pid: number, log: Logger): Promise<void> {
  const client = new Client(pool.options);
  client.on('error', (err) => log.warn({ err }, 'cancel connection failed'));
  try {
    await client.connect();
    await client.query('SELECT pg_cancel_backend($1)', [pid]);
  } catch (err) {
    log.warn({ err, pid }, 'could not cancel a read past its deadline');
  } finally {
    await client.end().catch((err: Error) => log.debug({ err }, 'cancel connection close'));
  }
}

export interface ReadServerDeps {
  connection: ChannelModel;
  names: Pick<ClusterNames, 'readQ' | 'deadLetters'>;
  pool: Pool;
  replica: Replica;
  workerId: string;
  log: Logger;
  failStop: (reason: string) => never;
  /** RabbitMQ consumer priority: ReadQ goes to the highest that has room (slaves 0). */
  priority?: number;
  /** MAX_ANSWER_BYTES. */
  maxAnswerBytes: number;
}

/** A slave serves ReadQ: competing consumers, each answering from its own database. */
export async function startReadServer({ connection, names, pool, replica, workerId, log, failStop, priority = 0, maxAnswerBytes }: ReadServerDeps): Promise<ReadServer> {
  const { readQ, deadLetters } = names;
  const ctx: ReadContext = { maxAnswerBytes };
  const channel: Channel = await connection.createChannel();
  await channel.prefetch(PREFETCH);
  const replies = new ReplySender(channel, log);
  const inFlight = new Set<Promise<void>>();

  /** The reply to a read that failed with `err`; a failure of the database itself marks the position to be checked again. */
  const failed = (err: unknown, id: string): RpcReply => {
    // Answering from a database that lost commits would break read-your-writes.
    if (err instanceof PositionMismatchError) failStop(`database position lost: ${err.message}`);
    if (isDatabaseUnavailable(err)) replica.suspectPosition();
    return errorReply(err, id, workerId, replica.appliedSeq, log);
  };

  const answer = async (request: ReadRequest, deadline: number | null): Promise<RpcReply> => {
    const { id } = request;
    try {
      await replica.verified();
      if (request.consistency === 'strong' && !(await replica.waitFor(request.minSeq, LAG_WAIT_MS))) {
        const error = { code: 'UNAVAILABLE' as const, message: `replica at seq ${replica.appliedSeq}, read needs ${request.minSeq}` };
        return { id, ok: false, workerId, appliedSeq: replica.appliedSeq, lagging: true, error };
      }
      const result = await runRead(pool, request, deadline, ctx, log);
      return { id, ok: true, workerId, appliedSeq: replica.appliedSeq, result };
    } catch (err) {
      return failed(err, id);
    }
  };

  /** Selections that can be answered now, to go in groups; the rest (other reads, a minSeq not yet applied) alone. */
  const partitionReads = async (reads: ReadRequest[]) => {
    const together: ReadySelection[] = [];
    const alone: ReadRequest[] = [];
    // Unverified (the database failed since), every read goes alone, and `answer` says why.
    const verified =
      reads.length > 1 &&
      (await replica.verified().then(
        () => true,
        (err: unknown) => (log.debug({ err }, 'database position not verified'), false),
      ));
    for (const request of reads) {
      const ready = verified && (request.op === 'selection' || request.op === 'selectionAt') && (request.consistency === 'eventual' || request.minSeq <= replica.appliedSeq);
      const args = ready ? selectionArgsSchema.safeParse(request.args) : undefined;
      if (args?.success) together.push({ request, fields: args.data.fields });
      else alone.push(request);
    }
    return { together, alone };
  };

  /**
   * One statement for a group. If it fails, each read runs again alone, so only a read
   * that fails alone fails; past the deadline or with the database gone, each would fail
   * the same way, later, so the group's reads all get that error now.
   */
  const answerTogether = async (group: readonly ReadySelection[], deadline: number | null, replyTo: string | undefined) => {
    if (group.length > 1) {
      let results: unknown[] | null = null;
      try {
        const each = group.map((r) => r.fields);
        // One op to a group: its statement shape says which.
        const run = (sql: Sql): Promise<unknown[]> =>
          group[0].request.op === 'selectionAt' ? runSelectionsAt(sql, each, ctx.maxAnswerBytes) : runSelections(sql, each, ctx.maxAnswerBytes);
        results = await withDeadline(pool, deadline, `${group.length} reads`, log, run);
      } catch (err) {
        const unanswerable = isDatabaseUnavailable(err) || (err instanceof DbaasError && err.code === 'UNAVAILABLE');
        if (unanswerable) {
          for (const { request } of group) replies.send(replyTo, failed(err, request.id));
          return;
        }
        log.debug({ err, reads: group.length }, 'reads answered together failed; answering each alone');
      }
      if (results) {
        group.forEach(({ request }, i) => {
          const result = results[i];
          replies.send(replyTo, result instanceof DbaasError ? failed(result, request.id) : { id: request.id, ok: true, workerId, appliedSeq: replica.appliedSeq, result });
        });
        return;
      }
    }
    await Promise.all(group.map(async ({ request }) => replies.send(replyTo, await answer(request, deadline))));
  };

  const serve = async (msg: ConsumeMessage) => {
    const { replyTo, expiration } = msg.properties as { replyTo?: string; expiration?: string | number };
    const deadline = expiration === undefined || !Number.isFinite(Number(expiration)) ? null : Date.now() + Number(expiration);
    try {
      const { reads } = decode(readBatchSchema, msg.content);
      const { together, alone } = await partitionReads(reads);
      // Each read (or group) answers as soon as it is done; one waiting for its minSeq holds up no other.
      await Promise.all([
        ...selectionGroups(together).map((group) => answerTogether(group, deadline, replyTo)),
        ...alone.map(async (request) => replies.send(replyTo, await answer(request, deadline))),
      ]);
    } catch (err) {
      if (err instanceof MalformedMessageError) deadLetter(channel, deadLetters, msg, err.message, workerId);
      for (const id of idsToAnswer(msg, 'reads', 'id')) replies.send(replyTo, errorReply(err, id, workerId, replica.appliedSeq, log));
    }
    replies.ack(msg);
  };
  const { consumerTag } = await channel.consume(
    readQ,
    (msg) => {
      // The broker cancels a consumer when its queue goes (a classic ReadQ on a lost node).
      if (!msg) return failStop('ReadQ consumer was cancelled by the broker');
      const done = serve(msg).finally(() => inFlight.delete(done));
      inFlight.add(done);
    },
    { priority },
  );
  return {
    async stop() {
      await channel.cancel(consumerTag);
      await Promise.all(inFlight);
      replies.flush();
      await channel.close();
    },
  };
}
