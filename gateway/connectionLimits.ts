import fs from 'node:fs';
import type { Server, Socket } from 'node:net';
import type { Logger } from '../platform';
import { clientKey } from './clientKey';

/**
 * File descriptors the gateway keeps for itself beyond its clients' connections: its
 * broker and ZooKeeper connections, Docker's socket, the workers' pipes (process
 * runtime), log files, a connection being accepted while others close.
 */
export const RESERVED_DESCRIPTORS = 1024;

export interface ConnectionLimits {
  /** MAX_CONNECTIONS_PER_ADDRESS: TCP connections open at once from one client address. */
  maxPerAddress: number;
  /** All clients' connections together (`server.maxConnections`); null: no bound. */
  maxTotal: number | null;
}

/** Why a connection was refused: its address had its share open, or the gateway had all it can hold. */
export type RefusalReason = 'address' | 'total';

/**
 * The bound on all connections: the process's open-file limit less what the gateway keeps
 * for itself (null where it cannot be read: not Linux). Past the limit the gateway could
 * not accept anyone, nor reconnect to its broker or ZooKeeper (EMFILE). Node raises its
 * soft limit to the hard one as it starts, so in the gateway this is `ulimit -Hn`.
 */
export function totalConnectionBound(limitsFile = '/proc/self/limits'): number | null {
  let text: string;
  try {
    text = fs.readFileSync(limitsFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(text)?.[1];
  if (soft === undefined || soft === 'unlimited') return null;
  return Math.max(Number(soft) - RESERVED_DESCRIPTORS, Math.floor(Number(soft) / 2));
}

/**
 * Bounds the TCP connections to the gateway's port, HTTP and websockets alike. Without it
 * one client could open connections that never send a request (each lives until Node's
 * 60 s header timeout) until the process ran out of file descriptors, and then nobody was
 * served: the gateway could accept no one and open no socket of its own. One more
 * connection than an address's share is answered 503 with a GraphQL error naming the
 * setting, and closed; past the total, Node closes new connections unanswered.
 *
 * Call it before anything else listens for 'connection': the server's own listener (the
 * HTTP parser) is taken out and called for admitted connections only, so a refused one
 * never has a request read, let alone run.
 */
export function limitConnections(server: Server, limits: ConnectionLimits, onRefused: (reason: RefusalReason) => void, log: Logger): void {
  if (limits.maxTotal !== null) server.maxConnections = limits.maxTotal;
  server.on('drop', () => onRefused('total'));
  const serve = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  const open = new Map<string, number>();
  let warnedAt = Number.NEGATIVE_INFINITY;
  server.on('connection', (socket: Socket) => {
    const address = clientKey(socket.remoteAddress ?? '');
    const count = (open.get(address) ?? 0) + 1;
    if (count > limits.maxPerAddress) {
      onRefused('address');
      // One warning a minute at most: a flood would otherwise write one line per attempt.
      if (performance.now() - warnedAt > 60_000) {
        warnedAt = performance.now();
        log.warn({ address, open: count - 1 }, 'refusing connections from an address over MAX_CONNECTIONS_PER_ADDRESS');
      }
      // What the client sends meanwhile is read and dropped: closing with unread data
      // would reset the connection, and the client might lose the answer.
      socket.on('data', () => {});
      socket.on('error', (err) => log.debug({ err, address }, 'a refused connection failed'));
      socket.end(refusalResponse(limits.maxPerAddress), () => socket.destroy());
      return;
    }
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
    for (const listener of serve) listener.call(server, socket);
  });
}

/** A whole HTTP response, sent before any request is read: the client's first one gets it. */
function refusalResponse(maxPerAddress: number): string {
  const body = JSON.stringify({
    errors: [{ message: `at most ${maxPerAddress} connections may be open from one address (MAX_CONNECTIONS_PER_ADDRESS)`, extensions: { code: 'UNAVAILABLE' } }],
  });
  return `HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
