import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Pool } from 'pg';
import { badInput, decode, isReadOp, MalformedMessageError, parseArgs, readBatchSchema, readOperations, type Logger, type ReadRequest, type RpcReply, type Sql } from '../schema';
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

async function runRead(pool: Pool, request: ReadRequest): Promise<unknown> {
  if (!isReadOp(request.op)) throw badInput(`unknown read operation ${request.op}`);
  const op = readOperations[request.op] as { args: Parameters<typeof parseArgs>[0]; run(sql: Sql, args: unknown): Promise<unknown> };
  return op.run(prepared(pool), parseArgs(op.args, request.args));
}

/** A slave serves ReadQ: competing consumers, each answering from its own database. */
export async function startReadServer(
  connection: ChannelModel,
  readQ: string,
  deadLetters: string,
  pool: Pool,
  replica: Replica,
  workerId: string,
  log: Logger,
  failStop: (reason: string) => never,
  /** RabbitMQ consumer priority: ReadQ goes to the highest that has room (slaves 0). */
  priority = 0,
): Promise<ReadServer> {
  const channel: Channel = await connection.createChannel();
  await channel.prefetch(PREFETCH);
  const replies = new ReplySender(channel, log);
  const inFlight = new Set<Promise<void>>();

  const answer = async (request: ReadRequest): Promise<RpcReply> => {
    const { id } = request;
    try {
      await replica.verified();
      if (request.consistency === 'strong' && !(await replica.waitFor(request.minSeq, LAG_WAIT_MS))) {
        const error = { code: 'UNAVAILABLE' as const, message: `replica at seq ${replica.appliedSeq}, read needs ${request.minSeq}` };
        return { id, ok: false, workerId, appliedSeq: replica.appliedSeq, lagging: true, error };
      }
      const result = await runRead(pool, request);
      return { id, ok: true, workerId, appliedSeq: replica.appliedSeq, result };
    } catch (err) {
      // Answering from a database that lost commits would break read-your-writes.
      if (err instanceof PositionMismatchError) failStop(`database position lost: ${err.message}`);
      if (isDatabaseUnavailable(err)) replica.suspectPosition();
      return errorReply(err, id, workerId, replica.appliedSeq, log);
    }
  };

  const serve = async (msg: ConsumeMessage) => {
    const { replyTo } = msg.properties as { replyTo?: string };
    try {
      const { reads } = decode(readBatchSchema, msg.content);
      // Each read answers as soon as it is done; one waiting for its minSeq holds up no other.
      await Promise.all(reads.map(async (request) => replies.send(replyTo, await answer(request))));
    } catch (err) {
      if (err instanceof MalformedMessageError) deadLetter(channel, deadLetters, msg, err.message, workerId);
      for (const id of idsToAnswer(msg, 'reads', 'id')) replies.send(replyTo, errorReply(err, id, workerId, replica.appliedSeq, log));
    }
    channel.ack(msg);
  };
  const { consumerTag } = await channel.consume(readQ, (msg) => {
    if (!msg) return;
    const done = serve(msg).finally(() => inFlight.delete(done));
    inFlight.add(done);
  }, { priority });
  return {
    async stop() {
      await channel.cancel(consumerTag);
      await Promise.all(inFlight);
      replies.flush();
      await channel.close();
    },
  };
}
