import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Pool } from 'pg';
import { decode, isReadOp, MalformedMessageError, parseArgs, readOperations, readRequestSchema, badInput, type Logger, type ReadRequest, type Sql } from '../schema';
import { prepared } from './preparedSql';
import type { Replica } from './replica';
import { deadLetter, errorReply, reply } from './rpcReply';

/** How long a slave waits to catch up to a read's minSeq before saying it lags. */
const LAG_WAIT_MS = 200;
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
): Promise<ReadServer> {
  const channel: Channel = await connection.createChannel();
  await channel.prefetch(PREFETCH);
  const inFlight = new Set<Promise<void>>();
  const serve = async (msg: ConsumeMessage) => {
    try {
      const request = decode(readRequestSchema, msg.content);
      if (request.consistency === 'strong' && !(await replica.waitFor(request.minSeq, LAG_WAIT_MS))) {
        reply(channel, msg, {
          ok: false,
          workerId,
          appliedSeq: replica.appliedSeq,
          lagging: true,
          error: { code: 'UNAVAILABLE', message: `replica at seq ${replica.appliedSeq}, read needs ${request.minSeq}` },
        });
      } else {
        const result = await runRead(pool, request);
        reply(channel, msg, { ok: true, workerId, appliedSeq: replica.appliedSeq, result });
      }
    } catch (err) {
      if (err instanceof MalformedMessageError) deadLetter(channel, deadLetters, msg, err.message, workerId);
      reply(channel, msg, errorReply(err, workerId, replica.appliedSeq, log));
    }
    channel.ack(msg);
  };
  const { consumerTag } = await channel.consume(readQ, (msg) => {
    if (!msg) return;
    const done = serve(msg).finally(() => inFlight.delete(done));
    inFlight.add(done);
  });
  return {
    async stop() {
      await channel.cancel(consumerTag);
      await Promise.all(inFlight);
      await channel.close();
    },
  };
}
