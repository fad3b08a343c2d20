import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../platform';

export interface UnreadAnswerLimits {
  /** MAX_PIPELINED_REQUESTS: requests one connection may have unanswered (answer not yet handed to the kernel). */
  maxPipelined: number;
  /** MAX_UNSENT_ANSWER_BYTES: answers waiting in the gateway for clients to read them, all connections together. */
  maxUnsentBytes: number;
}

/** Why a connection was closed: it sent past its pipelining bound, or held the most unsent answers over the budget. */
export type UnreadClosure = 'pipelined' | 'unsent';

/**
 * How often the unsent answers are added up. An attacker's answers grow between two looks
 * by what the gateway can produce in that time (a few tens of MB at most), well within the
 * heap's margin over the default budget.
 */
const SWEEP_INTERVAL_MS = 250;

interface Connection {
  socket: Socket;
  /**
   * Responses to its requests not yet handed to the kernel, oldest first: waiting their
   * turn, running, queued behind one another, or unsent. HTTP/1.1 answers in order, so
   * they finish in this order; finished ones are dropped from the front when looked at.
   */
  unanswered: ServerResponse[];
  /** Requests parsed but not yet handed to the app: one runs per connection per turn of the event loop. */
  waiting: Array<[IncomingMessage, ServerResponse]>;
  /** The turn its last request ran in. */
  ranIn: number;
  /** It sent one request past its bound: it is answered 503, and any further request closes it. */
  refused: boolean;
}

/** Its responses not yet handed to the kernel. */
function unansweredOf(connection: Connection): ServerResponse[] {
  const list = connection.unanswered;
  let finished = 0;
  while (finished < list.length && (list[finished].writableFinished || list[finished].destroyed)) finished += 1;
  if (finished) list.splice(0, finished);
  return list;
}

/**
 * Bytes of a connection's answers still in the gateway: the socket's queue, and answers
 * waiting behind the one it is sending (Node queues pipelined responses in order).
 */
function unsentBytes(connection: Connection): number {
  let bytes = connection.socket.writableLength;
  for (const res of unansweredOf(connection)) if (!res.socket) bytes += res.writableLength;
  return bytes;
}

/**
 * Bounds what clients that send faster than they read can make the gateway hold. Node's
 * HTTP server parses every pipelined request of a chunk before any answer exists, so one
 * write of 2,000 small requests runs 2,000 reads, and their answers wait in the gateway's
 * heap for as long as the client does not read (tried: 500 such connections took the
 * gateway to 500 MB and held another client's request for 27 s: each connection's
 * requests, answered from the read cache into the kernel's socket buffers, ran one after
 * another in a single turn of the event loop, ~850 of them before the buffers filled and
 * Node stopped reading).
 * - A connection has one request run per turn of the event loop; the others wait their
 *   turn, so every connection's requests interleave with every other's. A client that does
 *   not pipeline never waits.
 * - A connection may have `maxPipelined` requests unanswered (waiting or running); the
 *   next is answered 503 with `Connection: close`, unrun, and a request after that closes
 *   the connection.
 * - Answers not yet handed to the kernel, over all connections, are added up every
 *   `SWEEP_INTERVAL_MS`; past `maxUnsentBytes` the connections holding most are closed
 *   until the rest is under it. A client that reads keeps almost nothing unsent.
 * Websockets are not counted here: graphql-ws sends a subscription's next message only
 * once the last was written, and the live feed bounds what waits before that.
 */
export function limitUnreadAnswers(listener: RequestListener, limits: UnreadAnswerLimits, onClosed: (reason: UnreadClosure) => void, log: Logger) {
  const bySocket = new WeakMap<Socket, Connection>();
  /** Every open connection that has sent a request: what the sweep looks at. */
  const open = new Set<Connection>();
  /** Connections with requests waiting for a turn, in arrival order. */
  const queued = new Set<Connection>();
  let turn = 0;
  let nextTurnScheduled = false;
  const nextTurn = () => {
    nextTurnScheduled = false;
    turn += 1;
    const now = [...queued];
    queued.clear();
    for (const connection of now) {
      const next = connection.waiting.shift();
      if (next === undefined) continue;
      if (connection.waiting.length) queued.add(connection);
      run(connection, next[0], next[1]);
    }
  };
  // The turn advances once per turn of the event loop in which a request ran (not per request).
  const run = (connection: Connection, req: IncomingMessage, res: ServerResponse) => {
    connection.ranIn = turn;
    if (!nextTurnScheduled) {
      nextTurnScheduled = true;
      setImmediate(nextTurn);
    }
    // Closed while it waited (the client went, or the budget closed it): nothing to answer.
    if (connection.socket.destroyed) return;
    listener(req, res);
  };
  const warnedAt = { pipelined: Number.NEGATIVE_INFINITY, unsent: Number.NEGATIVE_INFINITY };
  const closed = (reason: UnreadClosure, details: Record<string, unknown>, message: string) => {
    onClosed(reason);
    // One warning a minute at most per reason: a flood would otherwise write a line per connection.
    if (performance.now() - warnedAt[reason] > 60_000) {
      warnedAt[reason] = performance.now();
      log.warn(details, message);
    }
  };

  const sweep = () => {
    let total = 0;
    const holders: Array<{ connection: Connection; bytes: number }> = [];
    for (const connection of open) {
      const bytes = unsentBytes(connection);
      if (bytes === 0) continue;
      total += bytes;
      holders.push({ connection, bytes });
    }
    if (total <= limits.maxUnsentBytes) return;
    holders.sort((a, b) => b.bytes - a.bytes);
    for (const { connection, bytes } of holders) {
      if (total <= limits.maxUnsentBytes) break;
      total -= bytes;
      closed('unsent', { address: connection.socket.remoteAddress, bytes }, 'closing connections that hold the most unread answers: all together are over MAX_UNSENT_ANSWER_BYTES');
      connection.socket.destroy();
    }
  };
  const timer = setInterval(sweep, SWEEP_INTERVAL_MS);
  timer.unref();

  const connectionOf = (socket: Socket): Connection => {
    const known = bySocket.get(socket);
    if (known) return known;
    const connection: Connection = { socket, unanswered: [], waiting: [], ranIn: -1, refused: false };
    bySocket.set(socket, connection);
    open.add(connection);
    socket.once('close', () => {
      open.delete(connection);
      queued.delete(connection);
      connection.waiting.length = 0;
      connection.unanswered.length = 0;
    });
    return connection;
  };

  const bounded: RequestListener = (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const connection = connectionOf(socket);
    // It was told to stop and did not: what it has in flight is dropped with the connection.
    if (connection.refused) return void socket.destroy();
    const unanswered = unansweredOf(connection);
    if (unanswered.length >= limits.maxPipelined) {
      connection.refused = true;
      closed('pipelined', { address: socket.remoteAddress }, 'refusing a request past MAX_PIPELINED_REQUESTS on one connection');
      return refuse(res, limits.maxPipelined);
    }
    unanswered.push(res);
    if (connection.ranIn !== turn) return run(connection, req, res);
    connection.waiting.push([req, res]);
    queued.add(connection);
  };
  return { listener: bounded, stop: () => clearInterval(timer) };
}

function refuse(res: ServerResponse, maxPipelined: number): void {
  const body = JSON.stringify({
    errors: [{ message: `at most ${maxPipelined} requests may wait for their answers on one connection (MAX_PIPELINED_REQUESTS)`, extensions: { code: 'UNAVAILABLE' } }],
  });
  res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.end(body);
}
