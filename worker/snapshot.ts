import type { ChannelModel, ConsumeMessage } from 'amqplib';
import type { Pool } from 'pg';
import { inTransaction } from './database';
import { decode, encode, entriesOf, logMessageSchema, SNAPSHOT_TABLES, snapshotPartSchema, unavailable, type ClusterNames, type Logger, type SnapshotPart } from '../schema';

const ROWS_PER_PART = 5000;
const PROBE_IDLE_MS = 1000;

/**
 * Snapshots, for workers the log no longer reaches back far enough for (SyncQ's stream is
 * bounded by LOG_RETENTION_BYTES). Every caught-up worker serves them: its replicated
 * tables and its position, read in one REPEATABLE READ transaction, so rows and
 * (applied seq, stream offset) agree. The new worker loads them in one transaction and
 * tails the log from that offset.
 */
export async function startSnapshotServer(connection: ChannelModel, names: ClusterNames, pool: Pool, workerId: string, log: Logger): Promise<void> {
  const channel = await connection.createChannel();
  await channel.prefetch(1);
  await channel.consume(names.snapshotQ, (msg) => {
    if (!msg) return;
    void serve(msg)
      .catch((err: Error) => log.error({ err }, 'snapshot failed'))
      .finally(() => channel.ack(msg));
  });

  async function serve(msg: ConsumeMessage): Promise<void> {
    const to = msg.properties.replyTo as string | undefined;
    if (!to) return;
    const send = (part: SnapshotPart) => channel.sendToQueue(to, encode(part));
    await inTransaction(
      pool,
      log,
      async (client) => {
        const { rows } = await client.query<{ applied_seq: string; epoch: number; stream_offset: string }>('SELECT applied_seq, epoch, stream_offset FROM _dbaas_state');
        const position = { appliedSeq: Number(rows[0].applied_seq), epoch: rows[0].epoch, streamOffset: Number(rows[0].stream_offset) };
        log.info({ to, ...position }, 'serving a snapshot');
        send({ kind: 'begin', workerId, ...position });
        let total = 0;
        for (const table of SNAPSHOT_TABLES) {
          // Table names come from the fixed list above, never from the request.
          await client.query(`DECLARE snap CURSOR FOR SELECT row_to_json(t) AS r FROM ${table} t`);
          for (;;) {
            const chunk = await client.query<{ r: Record<string, unknown> }>(`FETCH ${ROWS_PER_PART} FROM snap`);
            if (!chunk.rowCount) break;
            send({ kind: 'rows', table, rows: chunk.rows.map((x) => x.r) });
            total += chunk.rowCount;
          }
          await client.query('CLOSE snap');
        }
        send({ kind: 'end', rows: total });
      },
      'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
    );
  }
}

/**
 * True when the log still holds the entry after `appliedSeq` (or nothing at all past this
 * worker's offset): the first write entry found from `fromOffset` must not be beyond
 * `appliedSeq + 1`.
 */
export async function logReachesBack(connection: ChannelModel, streamQueue: string, fromOffset: number, appliedSeq: number): Promise<boolean> {
  const channel = await connection.createChannel();
  await channel.prefetch(100);
  try {
    return await new Promise<boolean>((resolve, reject) => {
      let idle = setTimeout(() => resolve(true), PROBE_IDLE_MS);
      channel
        .consume(
          streamQueue,
          (msg) => {
            if (!msg) return;
            clearTimeout(idle);
            const write = entriesOf(decode(logMessageSchema, msg.content)).find((e) => e.kind === 'write');
            if (write?.kind === 'write') return resolve(write.seq <= appliedSeq + 1);
            idle = setTimeout(() => resolve(true), PROBE_IDLE_MS);
          },
          { noAck: false, arguments: { 'x-stream-offset': fromOffset } },
        )
        .catch(reject);
    });
  } finally {
    await channel.close();
  }
}

/** Replaces this worker's replicated state with a peer's snapshot, atomically. */
export async function bootstrapFromSnapshot(connection: ChannelModel, names: ClusterNames, pool: Pool, log: Logger, timeoutMs = 60_000): Promise<void> {
  const channel = await connection.createChannel();
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  const started = Date.now();
  try {
    await inTransaction(pool, log, async (client) => {
      await client.query(`TRUNCATE ${SNAPSHOT_TABLES.join(', ')}`);
      const done = new Promise<void>((resolve, reject) => {
        let chain = Promise.resolve();
        let timer = setTimeout(() => reject(unavailable(`no worker sent a snapshot within ${timeoutMs} ms`)), timeoutMs);
        const handle = async (part: SnapshotPart) => {
          if (part.kind === 'begin') {
            log.info({ from: part.workerId, appliedSeq: part.appliedSeq }, 'loading a snapshot');
            await client.query('UPDATE _dbaas_state SET applied_seq = $1, epoch = $2, stream_offset = $3', [part.appliedSeq, part.epoch, part.streamOffset]);
          } else if (part.kind === 'rows') {
            await client.query(`INSERT INTO ${part.table} SELECT * FROM json_populate_recordset(null::${part.table}, $1::json)`, [JSON.stringify(part.rows)]);
          } else {
            clearTimeout(timer);
            log.info({ rows: part.rows, ms: Date.now() - started }, 'snapshot loaded');
            resolve();
          }
        };
        void channel.consume(
          queue,
          (msg) => {
            if (!msg) return;
            clearTimeout(timer);
            timer = setTimeout(() => reject(unavailable('the snapshot stopped arriving')), timeoutMs);
            const part = decode(snapshotPartSchema, msg.content);
            chain = chain.then(() => handle(part)).catch(reject);
          },
          { noAck: true },
        );
      });
      channel.sendToQueue(names.snapshotQ, encode({}), { replyTo: queue });
      await done;
    });
  } finally {
    await channel.close();
  }
}
