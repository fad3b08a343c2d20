import { randomUUID } from 'node:crypto';
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Pool, PoolClient } from 'pg';
import {
  badInput,
  decode,
  encode,
  isWriteOp,
  parseArgs,
  writeOperations,
  writeRequestSchema,
  type ClusterNames,
  type LogEntry,
  type Logger,
  type WriteEntry,
  type WriteRequest,
} from '../schema';
import { recordInLog, savePosition, type Replica } from './replica';
import { errorReply, reply } from './rpcReply';

const WRITE_PREFETCH = 64;

interface CatalogueWrite {
  args: Parameters<typeof parseArgs>[0];
  resolve(sql: PoolClient, args: unknown): Promise<unknown>;
  apply(sql: PoolClient, resolved: unknown): Promise<unknown>;
}

export interface MasterDeps {
  connection: ChannelModel;
  names: ClusterNames;
  pool: Pool;
  replica: Replica;
  workerId: string;
  log: Logger;
  failStop: (reason: string) => void;
}

function publishConfirmed(channel: ConfirmChannel, exchange: string, entry: LogEntry): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.publish(exchange, '', encode(entry), { persistent: true, contentType: 'application/json' }, (err) =>
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

/**
 * The master's write path. One write at a time, in one transaction: dedupe by request id,
 * check and resolve, apply, record in the log table, publish to SyncQ with a publisher
 * confirm, commit, reply, ack. A client hears success only after the broker confirmed.
 */
export async function startWriteServer(deps: MasterDeps, epoch: number, sync: ConfirmChannel): Promise<void> {
  const { connection, names, pool, replica, workerId, log } = deps;
  const channel = await connection.createChannel();
  await channel.prefetch(WRITE_PREFETCH);

  const execute = async (request: WriteRequest): Promise<{ result: unknown; seq: number }> => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const dup = await client.query<{ seq: string; result: unknown }>('SELECT seq, result FROM _dbaas_log WHERE request_id = $1', [
        request.requestId,
      ]);
      if (dup.rowCount) {
        await client.query('COMMIT');
        return { result: dup.rows[0].result, seq: Number(dup.rows[0].seq) };
      }
      if (!isWriteOp(request.op)) throw badInput(`unknown write operation ${request.op}`);
      const op = writeOperations[request.op] as CatalogueWrite;
      const resolved = await op.resolve(client, parseArgs(op.args, request.args));
      const result = await op.apply(client, resolved);
      const entry: WriteEntry = { kind: 'write', epoch, seq: replica.appliedSeq + 1, requestId: request.requestId, op: request.op, args: resolved, result };
      await recordInLog(client, entry);
      const position = { appliedSeq: entry.seq, epoch, streamOffset: replica.streamOffset };
      await savePosition(client, position);
      try {
        await publishConfirmed(sync, names.syncExchange, entry);
      } catch (err) {
        // The entry may or may not be in the log; only a successor reading the log can
        // know. Stop without committing (fail-stop), so this database never disagrees.
        deps.failStop(`SyncQ publish failed: ${(err as Error).message}`);
        throw err;
      }
      await client.query('COMMIT');
      replica.advanceTo(position);
      return { result, seq: entry.seq };
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: Error) => log.error({ err: rollbackErr }, 'rollback failed'));
      throw err;
    } finally {
      client.release();
    }
  };

  const handle = async (msg: ConsumeMessage): Promise<void> => {
    try {
      const request = decode(writeRequestSchema, msg.content);
      const { result, seq } = await execute(request);
      reply(channel, msg, { ok: true, workerId, result, seq, appliedSeq: replica.appliedSeq });
    } catch (err) {
      reply(channel, msg, errorReply(err, workerId, replica.appliedSeq, log));
    }
    channel.ack(msg);
  };

  let queue = Promise.resolve();
  await channel.consume(names.writeQ, (msg) => {
    if (!msg) return deps.failStop('WriteQ consumer was cancelled by the broker');
    queue = queue.then(() => handle(msg));
  });
  log.info({ epoch, appliedSeq: replica.appliedSeq }, 'serving writes');
}
