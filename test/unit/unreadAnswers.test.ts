import http from 'node:http';
import net from 'node:net';
import { createLogger } from '../../platform';
import { limitUnreadAnswers, type UnreadAnswerLimits, type UnreadClosure } from '../../gateway/unreadAnswers';

// Node's own HTTP server on loopback, no other service: what a client that pipelines, or
// does not read, gets from the bounds in front of the gateway's app.

const log = createLogger('silent', {});
const request = (path: string) => `GET ${path} HTTP/1.1\r\nHost: ridedb\r\n\r\n`;

interface Harness {
  port: number;
  /** Connections the server has accepted so far. */
  accepted(): number;
  /** Paths in the order the app was handed their requests. */
  ran: string[];
  closed: UnreadClosure[];
  close(): Promise<void>;
}

/** `later`: answers wait 20 ms (as a read or a write does), else they are sent as the request runs. */
async function serve(limits: UnreadAnswerLimits, answer: (path: string) => string | Buffer = (p) => p, later = false): Promise<Harness> {
  const ran: string[] = [];
  const closed: UnreadClosure[] = [];
  let accepted = 0;
  const bounded = limitUnreadAnswers(
    (req, res) => {
      ran.push(req.url!);
      if (later) setTimeout(() => res.end(answer(req.url!)), 20);
      else res.end(answer(req.url!));
    },
    limits,
    (reason) => closed.push(reason),
    log,
  );
  const server = http.createServer(bounded.listener);
  server.on('connection', () => (accepted += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    ran,
    closed,
    close: async () => {
      bounded.stop();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const connect = (port: number) =>
  new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.on('error', reject);
  });

/** Everything the server sends on `socket` until it closes it (or `until` matches). */
const received = (socket: net.Socket, until?: RegExp) =>
  new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      if (until?.test(text)) resolve(text);
    });
    socket.on('error', () => resolve(text));
    socket.on('close', () => resolve(text));
  });

/** Holds the event loop, so what the clients wrote meanwhile is read in one turn. */
const holdEventLoop = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

const LIMITS: UnreadAnswerLimits = { maxPipelined: 32, maxUnsentBytes: 64 * 2 ** 20 };

describe('answers a client leaves unread, and requests it pipelines', () => {
  it("runs pipelined requests one per connection per turn, interleaved with other connections'", async () => {
    const server = await serve(LIMITS);
    try {
      const [a, b] = await Promise.all([connect(server.port), connect(server.port)]);
      // Both accepted, so both are read in the same turn.
      while (server.accepted() < 2) await new Promise((resolve) => setImmediate(resolve));
      const answers = [received(a, /\/a5$/), received(b, /\/b5$/)];
      a.write([1, 2, 3, 4, 5].map((i) => request(`/a${i}`)).join(''));
      b.write([1, 2, 3, 4, 5].map((i) => request(`/b${i}`)).join(''));
      holdEventLoop(100);
      const [textA, textB] = await Promise.all(answers);
      // Each connection's answers in its own order, all of them.
      expect(textA.match(/\/a\d/g)).toEqual(['/a1', '/a2', '/a3', '/a4', '/a5']);
      expect(textB.match(/\/b\d/g)).toEqual(['/b1', '/b2', '/b3', '/b4', '/b5']);
      // Without the turns the app saw a1…a5 and then b1…b5.
      expect(server.ran).toEqual(['/a1', '/b1', '/a2', '/b2', '/a3', '/b3', '/a4', '/b4', '/a5', '/b5']);
      a.destroy();
      b.destroy();
    } finally {
      await server.close();
    }
  });

  it('answers the first request past MAX_PIPELINED_REQUESTS with 503, unrun, and closes the connection', async () => {
    const server = await serve({ ...LIMITS, maxPipelined: 4 }, undefined, true);
    try {
      const socket = await connect(server.port);
      const answer = received(socket);
      socket.write([1, 2, 3, 4, 5].map((i) => request(`/r${i}`)).join(''));
      const text = await answer;
      expect(text.match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 503']);
      expect(text).toMatch(/"code":"UNAVAILABLE"/);
      expect(text).toMatch(/MAX_PIPELINED_REQUESTS/);
      expect(server.ran).toEqual(['/r1', '/r2', '/r3', '/r4']);
      expect(server.closed).toEqual(['pipelined']);
    } finally {
      await server.close();
    }
  });

  it('closes a connection that sends on after that, without running what it sent', async () => {
    const server = await serve({ ...LIMITS, maxPipelined: 4 });
    try {
      const socket = await connect(server.port);
      const answer = received(socket);
      socket.write(Array.from({ length: 2000 }, (_, i) => request(`/r${i}`)).join(''));
      await answer;
      expect(socket.destroyed || socket.readableEnded).toBe(true);
      // The first ran in the turn it arrived; the rest waited and went with the connection.
      expect(server.ran).toEqual(['/r0']);
      // Another client is served as before.
      const other = await connect(server.port);
      const otherAnswer = received(other, /\/fine$/);
      other.write(request('/fine'));
      expect(await otherAnswer).toMatch(/^HTTP\/1\.1 200/);
      other.destroy();
    } finally {
      await server.close();
    }
  });

  it('closes the connections holding the most unsent answers once all together pass MAX_UNSENT_ANSWER_BYTES, and serves readers', async () => {
    // Answers larger than loopback's socket buffers, so most of each waits in the process.
    const big = Buffer.alloc(32 * 2 ** 20, 'x');
    // A reader's answer is under the budget (as MAX_ANSWER_BYTES is under the default's),
    // else even one in transit could pass it.
    const readable = Buffer.alloc(8 * 2 ** 20, 'y');
    const server = await serve({ ...LIMITS, maxUnsentBytes: 16 * 2 ** 20 }, (path) => (path === '/big' ? big : readable));
    try {
      const sleepers = await Promise.all([1, 2, 3].map(() => connect(server.port)));
      for (const s of sleepers) {
        s.pause(); // never reads (nor sees its close)
        s.write(request('/big'));
      }
      // Each holds ~32 MB less what the kernel took: over 16 MB alone.
      while (server.closed.length < 3) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(server.closed).toEqual(['unsent', 'unsent', 'unsent']);
      // A client that reads gets the whole answer meanwhile.
      const reader = await connect(server.port);
      let bytes = 0;
      const done = new Promise<void>((resolve) => {
        reader.on('data', (d: Buffer) => {
          bytes += d.length;
          if (bytes >= readable.length) resolve();
        });
      });
      reader.write(request('/readable'));
      await done;
      expect(bytes).toBeGreaterThanOrEqual(readable.length);
      expect(server.closed).toHaveLength(3);
      reader.destroy();
      for (const s of sleepers) s.destroy();
    } finally {
      await server.close();
    }
  });
});
