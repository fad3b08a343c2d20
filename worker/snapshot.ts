import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { finished } from 'node:stream/promises';
import { Client, type Pool, type PoolClient } from 'pg';
import { from as copyFrom, to as copyTo, type CopyStreamQuery } from 'pg-copy-streams';
import { inTransaction } from './database';
import {
  decode,
  encode,
  entriesOf,
  logMessageSchema,
  SNAPSHOT_PART_HEADER,
  SNAPSHOT_TABLES,
  snapshotCreditSchema,
  snapshotPartSchema,
  unavailable,
  type ClusterNames,
  type SnapshotPart,
} from '../schema';
import { readStreamFrom, streamOffsetOf, type Logger } from '../platform';

/** COPY text per part: large enough that per-message costs vanish, small enough to hold a few. */
const PART_BYTES = 256 * 1024;
/** Parts in flight: the receiver's memory (and the broker's) stays at WINDOW × PART_BYTES. */
const WINDOW = 4;
/** Silence after which an empty stream counts as reaching back (see logReachesBack). */
const PROBE_IDLE_MS = 200;
/** How long either side waits on the other's silence before giving the transfer up. */
export const SNAPSHOT_SILENCE_MS = 60_000;
/** Whole transfers a bootstrapping worker tries before it fail-stops. */
const ATTEMPTS = 3;

type Table = (typeof SNAPSHOT_TABLES)[number];

/**
 * Snapshots, for workers the log no longer reaches back far enough for (SyncQ's stream is
 * bounded by LOG_RETENTION_BYTES). Every caught-up worker serves them: its replicated
 * tables and its position, read in one REPEATABLE READ transaction, so rows and
 * (applied seq, stream offset) agree. Rows travel as COPY text under credit-based flow
 * control, so neither the receiver nor the broker ever holds more than a few parts, at
 * any size. Of the request-id table only the idempotency window is sent: older ids are
 * forgotten anyway (worker/requestIdTrimmer.ts).
 */
export async function startSnapshotServer(
  connection: ChannelModel,
  names: ClusterNames,
  pool: Pool,
  workerId: string,
  idempotencyWindowSeconds: number,
  log: Logger,
  silenceMs = SNAPSHOT_SILENCE_MS,
): Promise<void> {
  const channel = await connection.createChannel();
  await channel.prefetch(1);
  // SnapshotQ is transient: RabbitMQ deletes it with the node that held it, cancelling
  // every consumer. Declared again (on a live node) and consumed again, so a cluster that
  // lost a broker node still serves snapshots to the workers that replace others.
  const consume = async (): Promise<void> => {
    await channel.assertQueue(names.snapshotQ, { durable: false });
    await channel.consume(names.snapshotQ, onRequest);
  };
  const onRequest = (msg: ConsumeMessage | null): void => {
    if (!msg) {
      log.warn('snapshot queue went away (its broker node was lost); consuming it again');
      setTimeout(() => void consume().catch((err: Error) => log.error({ err }, 'could not consume the snapshot queue again')), 100);
      return;
    }
    void serve(msg)
      .catch((err: Error) => {
        log.error({ err }, 'snapshot failed');
        // The receiver starts over at once instead of waiting out its silence timer.
        const to = msg.properties.replyTo as string | undefined;
        if (to) sendPart(channel, to, { kind: 'abort', reason: err.message });
      })
      .finally(() => channel.ack(msg));
  };
  await consume();

  async function serve(msg: ConsumeMessage): Promise<void> {
    const to = msg.properties.replyTo as string | undefined;
    if (!to) return;
    const creditChannel = await connection.createChannel();
    try {
      const { queue: creditQueue } = await creditChannel.assertQueue('', { exclusive: true, autoDelete: true });
      const credit = new CreditWindow(WINDOW, silenceMs, () => queueExists(connection, to, log));
      await creditChannel.consume(creditQueue, (m) => m && credit.grant(decode(snapshotCreditSchema, m.content).received), { noAck: true });
      const send = (part: SnapshotPart, body?: Buffer) => sendPart(channel, to, part, body);

      // A connection of the transfer's own: if the receiver goes away mid-COPY, closing it
      // ends the COPY and the transaction at once (a pooled client would be left mid-query).
      const client = new Client(pool.options);
      client.on('error', (err) => log.warn({ err }, 'snapshot connection failed'));
      await client.connect();
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const { rows } = await client.query<{ applied_seq: string; epoch: number; stream_offset: string }>('SELECT applied_seq, epoch, stream_offset FROM _dbaas_state');
        const position = { appliedSeq: Number(rows[0].applied_seq), epoch: rows[0].epoch, streamOffset: Number(rows[0].stream_offset) };
        log.info({ to, ...position }, 'serving a snapshot');
        send({ kind: 'begin', workerId, ...position, creditQueue, window: WINDOW });
        let parts = 0;
        let total = 0;
        for (const table of SNAPSHOT_TABLES) {
          const columns = await columnsOf(client, table);
          const source = client.query(copyTo(`COPY (${selectFor(table, columns, idempotencyWindowSeconds)}) TO STDOUT`));
          let chunks: Buffer[] = [];
          let size = 0;
          const flush = async () => {
            if (!size) return;
            parts += 1;
            await credit.waitFor(parts);
            send({ kind: 'rows', part: parts, table, columns }, Buffer.concat(chunks, size));
            chunks = [];
            size = 0;
          };
          // Iterating pauses the COPY (and PostgreSQL's socket) while credit is short.
          for await (const chunk of source as AsyncIterable<Buffer>) {
            chunks.push(chunk);
            size += chunk.length;
            if (size >= PART_BYTES) await flush();
          }
          await flush();
          total += source.rowCount;
        }
        send({ kind: 'end', parts, rows: total });
        await client.query('COMMIT');
        log.info({ to, parts, rows: total }, 'snapshot served');
      } finally {
        await client.end();
      }
    } finally {
      await creditChannel.close();
    }
  }
}

function sendPart(channel: Channel, to: string, part: SnapshotPart, body: Buffer = Buffer.alloc(0)): void {
  channel.sendToQueue(to, body, { headers: { [SNAPSHOT_PART_HEADER]: JSON.stringify(part) } });
}

async function columnsOf(client: Client, table: Table): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT column_name AS name FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`,
    [table],
  );
  return rows.map((r) => r.name);
}

/** Table and column names come from the fixed list and the catalogue, never from a request. */
function selectFor(table: Table, columns: string[], idempotencyWindowSeconds: number): string {
  const select = `SELECT ${columns.join(', ')} FROM ${table}`;
  return table === '_dbaas_log' ? `${select} WHERE applied_at >= now() - make_interval(secs => ${Math.trunc(idempotencyWindowSeconds)})` : select;
}

/** The sender's side of the flow control: part n may go once part n − window is applied. */
class CreditWindow {
  private received = 0;
  private heardAt = Date.now();
  private wake: (() => void) | null = null;

  constructor(
    private readonly window: number,
    private readonly silenceMs: number,
    /** Checked every second of waiting, so a receiver that died is noticed at once. */
    private readonly receiverExists: () => Promise<boolean>,
  ) {}

  grant(received: number): void {
    this.received = Math.max(this.received, received);
    this.heardAt = Date.now();
    this.wake?.();
  }

  async waitFor(part: number): Promise<void> {
    while (part > this.received + this.window) {
      if (Date.now() - this.heardAt > this.silenceMs) throw unavailable(`the snapshot's receiver applied nothing for ${this.silenceMs} ms`);
      const granted = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 1000);
        this.wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      this.wake = null;
      if (!granted && !(await this.receiverExists())) throw unavailable("the snapshot's receiver is gone");
    }
  }
}

/** Whether a queue exists, on a throwaway channel (the broker closes it on a failed check). */
async function queueExists(connection: ChannelModel, queue: string, log: Logger): Promise<boolean> {
  const channel = await connection.createChannel();
  let closedByBroker = false;
  channel.on('error', (err: Error) => {
    closedByBroker = true;
    log.debug({ err, queue }, 'queue check');
  });
  try {
    await channel.checkQueue(queue);
    return true;
  } catch (err) {
    const { code } = err as { code?: number };
    // 405 RESOURCE_LOCKED: the queue is there, exclusive to its owner's connection.
    if (code === 405) return true;
    if (code === 404) return false;
    throw err;
  } finally {
    if (!closedByBroker) await channel.close();
  }
}

/**
 * True when the log still holds the entry after `appliedSeq`: the first write entry found
 * must not be beyond `appliedSeq + 1`. The probe reads from the message before
 * `fromOffset`, the last one this worker applied, whose writes are at most `appliedSeq`:
 * at the head of the log (a restarted worker, an idle cluster) the answer comes with that
 * first delivery instead of after a silence. Offset 0, delivered, answers at once too:
 * nothing was ever dropped. The seq check stays on every other message: a position saved
 * past a dropped part of the log (a worker told "true" wrongly, which applied an epoch
 * marker before its LOG_GAP) must not pass on the strength of its offset alone.
 *
 * Silence counts as reaching back: past the worker's offset there is nothing, or only
 * epoch markers. A worker with no position (a new one) waits `PROBE_IDLE_MS` after the
 * broker accepted the consumer, since an empty stream (a new cluster, before its first
 * master's epoch marker) never answers and every new cluster starts that way; one with a
 * position waits five times as long. A wrong "true" costs a LOG_GAP fail-stop and one
 * restart, after which the probe reads the skipped position and answers false.
 */
export async function logReachesBack(connection: ChannelModel, streamQueue: string, fromOffset: number, appliedSeq: number): Promise<boolean> {
  const start = Math.max(fromOffset - 1, 0);
  const idleMs = fromOffset > 0 ? PROBE_IDLE_MS * 5 : PROBE_IDLE_MS;
  const channel = await connection.createChannel();
  await channel.prefetch(100);
  let idle: NodeJS.Timeout | undefined;
  try {
    return await new Promise<boolean>((resolve, reject) => {
      let settled = false;
      const settle = (answer: boolean) => {
        settled = true;
        clearTimeout(idle);
        resolve(answer);
      };
      channel
        .consume(
          streamQueue,
          (msg) => {
            if (!msg || settled) return;
            clearTimeout(idle);
            if (start === 0 && streamOffsetOf(msg) === 0) return settle(true);
            const write = entriesOf(decode(logMessageSchema, msg.content)).find((e) => e.kind === 'write');
            if (write?.kind === 'write') return settle(write.seq <= appliedSeq + 1);
            idle = setTimeout(() => settle(true), idleMs);
          },
          readStreamFrom(start),
        )
        .then(() => {
          if (!settled) idle ??= setTimeout(() => settle(true), idleMs);
        }, reject);
    });
  } finally {
    clearTimeout(idle);
    await channel.close();
  }
}

/**
 * Replaces this worker's replicated state with a peer's snapshot, atomically. A failed
 * transfer rolls back whole and starts over from the beginning (from whichever peer takes
 * the request), at most ATTEMPTS times; then the worker fail-stops with the reason.
 */
export async function bootstrapFromSnapshot(connection: ChannelModel, names: ClusterNames, pool: Pool, log: Logger, silenceMs = SNAPSHOT_SILENCE_MS): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await loadSnapshot(connection, names, pool, log, silenceMs);
    } catch (err) {
      if (attempt >= ATTEMPTS) throw err;
      log.warn({ err, attempt }, 'snapshot transfer failed; starting it over');
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
    }
  }
}

async function loadSnapshot(connection: ChannelModel, names: ClusterNames, pool: Pool, log: Logger, silenceMs: number): Promise<void> {
  const channel = await connection.createChannel();
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  const started = Date.now();
  try {
    await inTransaction(pool, log, async (client) => {
      await client.query(`TRUNCATE ${SNAPSHOT_TABLES.join(', ')}`);
      const loader = new SnapshotLoader(client, channel, log);
      await receive(loader).catch(async (err: Error) => {
        await loader.abort(err);
        throw err;
      });
    });
  } finally {
    await channel.close();
  }

  function receive(loader: SnapshotLoader): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // The timer runs only while this side waits with nothing to apply: it measures the
      // sender's silence, never this worker's own backlog.
      let timer: NodeJS.Timeout | null = null;
      let pending = 0;
      let settled = false;
      const fail = (err: Error) => {
        if (timer) clearTimeout(timer);
        settled = true;
        reject(err);
      };
      const listen = (message: string) => {
        timer = setTimeout(() => fail(unavailable(message)), silenceMs);
      };
      let chain = Promise.resolve();
      const onPart = (msg: ConsumeMessage) => {
        if (timer) clearTimeout(timer);
        timer = null;
        pending += 1;
        chain = chain
          .then(async () => {
            if (settled) return;
            const totals = await loader.apply(msg);
            pending -= 1;
            if (totals) {
              settled = true;
              log.info({ ...totals, ms: Date.now() - started }, 'snapshot loaded');
              resolve();
            } else if (pending === 0) listen(`the snapshot stopped arriving: nothing for ${silenceMs} ms`);
          })
          .catch(fail);
      };
      listen(`no worker sent a snapshot within ${silenceMs} ms`);
      channel.consume(queue, (msg) => msg && onPart(msg), { noAck: true }).catch(fail);
      channel.sendToQueue(names.snapshotQ, encode({}), { replyTo: queue });
    });
  }
}

/** Applies parts in order, one COPY per table, and grants credit for each applied part. */
class SnapshotLoader {
  private creditQueue: string | null = null;
  private parts = 0;
  private rows = 0;
  private copy: { table: Table; stream: CopyStreamQuery; done: Promise<void> } | null = null;

  constructor(
    private readonly client: PoolClient,
    private readonly channel: Channel,
    private readonly log: Logger,
  ) {}

  /** Returns the totals once the last part is applied. */
  async apply(msg: ConsumeMessage): Promise<{ parts: number; rows: number } | null> {
    const header: unknown = msg.properties.headers?.[SNAPSHOT_PART_HEADER];
    const part = decode(snapshotPartSchema, Buffer.from(typeof header === 'string' ? header : ''));
    if (part.kind === 'begin') {
      this.log.info({ from: part.workerId, appliedSeq: part.appliedSeq }, 'loading a snapshot');
      this.creditQueue = part.creditQueue;
      await this.client.query('UPDATE _dbaas_state SET applied_seq = $1, epoch = $2, stream_offset = $3', [part.appliedSeq, part.epoch, part.streamOffset]);
      return null;
    }
    if (part.kind === 'abort') throw unavailable(`the sender gave the snapshot up: ${part.reason}`);
    if (!this.creditQueue) throw unavailable('a snapshot part arrived before its beginning');
    if (part.kind === 'rows') {
      if (part.part !== this.parts + 1) throw unavailable(`snapshot part ${part.part} arrived after part ${this.parts}`);
      if (this.copy?.table !== part.table) {
        await this.finishTable();
        const stream = this.client.query(copyFrom(`COPY ${part.table} (${part.columns.join(', ')}) FROM STDIN`));
        const done = finished(stream);
        // Awaited in finishTable or abort; until then a failure must not go unhandled.
        done.catch((err: Error) => this.log.debug({ err }, 'snapshot COPY ended with an error'));
        this.copy = { table: part.table, stream, done };
      }
      const { stream } = this.copy;
      await new Promise<void>((resolve, reject) => stream.write(msg.content, (err) => (err ? reject(err) : resolve())));
      this.parts = part.part;
      this.channel.sendToQueue(this.creditQueue, encode({ received: this.parts }));
      return null;
    }
    await this.finishTable();
    if (part.parts !== this.parts || part.rows !== this.rows) {
      throw unavailable(`the snapshot ended incomplete: ${this.parts}/${part.parts} parts, ${this.rows}/${part.rows} rows`);
    }
    return { parts: this.parts, rows: this.rows };
  }

  /** Fails an open COPY (PostgreSQL gets CopyFail), so the transaction can roll back. */
  async abort(reason: Error): Promise<void> {
    if (!this.copy) return;
    const { stream, done } = this.copy;
    this.copy = null;
    stream.destroy(reason);
    await done.catch((err: Error) => this.log.debug({ err }, 'snapshot COPY abandoned'));
  }

  private async finishTable(): Promise<void> {
    if (!this.copy) return;
    const { stream, done } = this.copy;
    this.copy = null;
    stream.end();
    await done;
    this.rows += stream.rowCount;
  }
}
