import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { Client, type Pool } from 'pg';
import { unavailable, decode, MalformedMessageError, parseArgs, readBatchSchema, type ClusterNames, type ReadRequest, type RpcReply } from '../schema';
import { readOperation } from './operations';
import { type Logger } from '../platform';
import { prepared } from './preparedSql';
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
 * Runs one read, cancelled in PostgreSQL once its deadline (the batch's AMQP expiration,
 * counted from delivery) has passed: the gateway has answered UNAVAILABLE by then, and an
 * abandoned read must stop costing the replica.
 */
async function runRead(pool: Pool, request: ReadRequest, deadline: number | null, log: Logger): Promise<unknown> {
  const op = readOperation(request.op);
  const args = parseArgs(op.args, request.args);
  if (deadline === null) return op.run(prepared(pool), args);
  const client = await pool.connect();
  // A holder, not a `let`: TypeScript cannot see the timer's assignment.
  const cancel: { pending?: Promise<void> } = {};
  const timer = setTimeout(
    () => {
      cancel.pending = cancelBackend(pool, (client as unknown as { processID: number }).processID, log);
    },
    Math.max(1, deadline - Date.now()),
  );
  try {
    return await op.run(prepared(client), args);
  } catch (err) {
    if (cancel.pending && (err as { code?: string }).code === QUERY_CANCELED) throw unavailable(`read ${request.op} passed its deadline and was cancelled`);
    throw err;
  } finally {
    clearTimeout(timer);
    // A cancel in flight must land before the connection serves its next query.
    if (cancel.pending) await cancel.pending;
    client.release();
  }
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
}

/** A slave serves ReadQ: competing consumers, each answering from its own database. */
export async function startReadServer({ connection, names, pool, replica, workerId, log, failStop, priority = 0 }: ReadServerDeps): Promise<ReadServer> {
  const { readQ, deadLetters } = names;
  const channel: Channel = await connection.createChannel();
  await channel.prefetch(PREFETCH);
  const replies = new ReplySender(channel, log);
  const inFlight = new Set<Promise<void>>();

  const answer = async (request: ReadRequest, deadline: number | null): Promise<RpcReply> => {
    const { id } = request;
    try {
      await replica.verified();
      if (request.consistency === 'strong' && !(await replica.waitFor(request.minSeq, LAG_WAIT_MS))) {
        const error = { code: 'UNAVAILABLE' as const, message: `replica at seq ${replica.appliedSeq}, read needs ${request.minSeq}` };
        return { id, ok: false, workerId, appliedSeq: replica.appliedSeq, lagging: true, error };
      }
      const result = await runRead(pool, request, deadline, log);
      return { id, ok: true, workerId, appliedSeq: replica.appliedSeq, result };
    } catch (err) {
      // Answering from a database that lost commits would break read-your-writes.
      if (err instanceof PositionMismatchError) failStop(`database position lost: ${err.message}`);
      if (isDatabaseUnavailable(err)) replica.suspectPosition();
      return errorReply(err, id, workerId, replica.appliedSeq, log);
    }
  };

  const serve = async (msg: ConsumeMessage) => {
    const { replyTo, expiration } = msg.properties as { replyTo?: string; expiration?: string | number };
    const deadline = expiration === undefined || !Number.isFinite(Number(expiration)) ? null : Date.now() + Number(expiration);
    try {
      const { reads } = decode(readBatchSchema, msg.content);
      // Each read answers as soon as it is done; one waiting for its minSeq holds up no other.
      await Promise.all(reads.map(async (request) => replies.send(replyTo, await answer(request, deadline))));
    } catch (err) {
      if (err instanceof MalformedMessageError) deadLetter(channel, deadLetters, msg, err.message, workerId);
      for (const id of idsToAnswer(msg, 'reads', 'id')) replies.send(replyTo, errorReply(err, id, workerId, replica.appliedSeq, log));
    }
    channel.ack(msg);
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
