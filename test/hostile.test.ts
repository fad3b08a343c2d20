import fs from 'node:fs';
import net from 'node:net';
import { PASSWORD, sleep, TestCluster, waitUntil } from './support/cluster';
import { RawSocket } from './support/rawSocket';

// Each attack of a hostile client, against the gateway as `npm start` runs it (128 MB old
// space). After each: the process lives, nothing is a 5xx or carries a stack trace, and
// other clients are still served.

const STACK = /\bat [^\s]+ \([^)]*\.[jt]s:\d+:\d+\)|node_modules\//;
const SUBSCRIBE = 'subscription { clusterEvents { type } }';
/**
 * MAX_CONNECTIONS_PER_ADDRESS here (the default): well above what this file's own clients
 * hold from 127.0.0.1 at once — 100 websockets, and the keep-alive sockets of 100 parallel
 * fetches, which stay open up to the server's 5 s keep-alive timeout into the next tests
 * (with 300, those two together were refused once in a few runs).
 */
const CONNECTIONS = 1000;
/** Another loopback address (all of 127.0.0.0/8 is loopback), so the flood's count is its own. */
const FLOOD_ADDRESS = '127.0.0.3';
/** The pipelining client's own address, for the same reason. */
const PIPELINE_ADDRESS = '127.0.0.4';

/** A TCP connection from `localAddress` that sends nothing. */
const tcpFrom = (localAddress: string, port: number) =>
  new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress }, () => resolve(socket));
    // Before the connect, a failure of the test; after it, a reset of a socket it only holds.
    socket.on('error', reject);
  });

/** One request (`GET path`, or a POST of `body` as JSON) on a new connection from `localAddress`: the raw response, as far as it came before the close. */
const httpFrom = (localAddress: string, port: number, path: string, body?: unknown) =>
  new Promise<string>((resolve) => {
    let text = '';
    const json = body === undefined ? '' : JSON.stringify(body);
    const head = body === undefined ? `GET ${path}` : `POST ${path}`;
    const request = `${head} HTTP/1.1\r\nHost: ridedb\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`;
    const socket = net.connect({ host: '127.0.0.1', port, localAddress }, () => socket.write(request));
    socket.on('data', (d: Buffer) => (text += d.toString()));
    // A refusal may reset the connection under the request: what came before is the answer.
    socket.on('error', () => resolve(text));
    socket.once('close', () => resolve(text));
  });

let cluster: TestCluster;
let startRss = 0;

const rssMb = () => {
  const status = fs.readFileSync(`/proc/${cluster.gateway.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
};

async function post(body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${cluster.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: res.status, text: await res.text() };
}

function expectClientError(res: { status: number; text: string }) {
  expect(res.status).toBeGreaterThanOrEqual(200);
  expect(res.status).toBeLessThan(500);
  expect(res.text).not.toMatch(STACK);
  expect(() => JSON.parse(res.text) as unknown).not.toThrow();
}

/** Times `{ rideCount }` from a well-behaved client while `attack` runs again and again for 2 s; returns the p99 in ms. */
async function p99During(attack: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  let running = true;
  const probe = (async () => {
    while (running) {
      const started = performance.now();
      const res = await fetch(`${cluster.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ rideCount }"}' });
      await res.text();
      expect(res.status).toBe(200);
      times.push(performance.now() - started);
      await sleep(20);
    }
  })();
  try {
    const until = performance.now() + 2000;
    do await attack();
    while (performance.now() < until);
  } finally {
    running = false;
    await probe;
  }
  times.sort((a, b) => a - b);
  const p99 = times[Math.min(times.length - 1, Math.floor(times.length * 0.99))];
  // The figure for BENCHMARKS.md; the assertion is only a generous bound.
  process.stdout.write(`${expect.getState().currentTestName}: other clients' p99 ${p99.toFixed(1)} ms over ${times.length} requests\n`);
  return p99;
}

const openSubscriptions = async () => Number(/^ridedb_subscriptions_open (\d+)$/m.exec(await (await fetch(`${cluster.url}/metrics`)).text())?.[1]);
const seriesCount = async () => (await (await fetch(`${cluster.url}/metrics`)).text()).split('\n').filter((l) => l && !l.startsWith('#')).length;

beforeAll(async () => {
  cluster = await TestCluster.start({ MAX_SUBSCRIPTIONS_PER_CONNECTION: '50', MAX_SUBSCRIPTIONS_PER_ADDRESS: '300', MAX_CONNECTIONS_PER_ADDRESS: String(CONNECTIONS) });
  await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'asha', p: PASSWORD });
  await cluster.data('{ rideCount }');
  startRss = rssMb();
});
afterAll(async () => {
  await cluster?.stop();
});
afterEach(() => {
  expect(cluster.gateway.exitCode).toBeNull();
});

describe('a hostile client', () => {
  it('cannot exhaust the heap with one large document (HTTP)', async () => {
    const p99 = await p99During(async () => {
      for (const words of [300_000, 45_000]) {
        const res = await post(JSON.stringify({ query: `{ ${'a '.repeat(words)}}` }));
        expectClientError(res);
        expect(res.text).toMatch(/MAX_QUERY_BYTES|more that 10000 tokens/);
      }
    });
    expect(p99).toBeLessThan(1000);
  });

  it('cannot crash the parser with deep nesting', async () => {
    for (const query of [`{ ${'a { '.repeat(6000)}b${' }'.repeat(6000)} }`, `{ rides(source: ${'['.repeat(6000)}1${']'.repeat(6000)}, destination: 2) { id } }`]) {
      expectClientError(await post(JSON.stringify({ query })));
      expectClientError(await post(JSON.stringify({ query }), { accept: 'application/graphql-response+json' }));
    }
  });

  it('cannot stall validation with a fan of fragments', async () => {
    const fragments = Array.from({ length: 30 }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`);
    const query = `query Fan { ...F0 } ${fragments.join(' ')} fragment F30 on Query { rideCount }`;
    const p99 = await p99During(async () => {
      const res = await post(JSON.stringify({ query }));
      expectClientError(res);
      expect(res.text).toMatch(/query cost/);
    });
    expect(p99).toBeLessThan(1000);
  });

  it('cannot grow the metrics with client text', async () => {
    const attack = async (variant: string) => {
      for (let i = 0; i < 100; i++) await post(JSON.stringify({ query: `{ ${'rideCount '.repeat(1 + (i % 50))}}` }));
      for (let i = 0; i < 20; i++) {
        const names = Array.from({ length: 30 }, (_, k) => `F${variant}${i}_${k}_${'x'.repeat(40)}`);
        await post(JSON.stringify({ query: `{ ${names.map((n) => `...${n}`).join(' ')} } ${names.map((n) => `fragment ${n} on Query { rideCount }`).join(' ')}` }));
        await post(JSON.stringify({ query: `{ made_up_${variant}${i} }` }));
      }
    };
    // The first round may add the few fixed labels it uses (`other`, outcomes); a second
    // round with other client text must add nothing.
    await attack('a');
    const before = await seriesCount();
    await attack('b');
    expect(await seriesCount()).toBe(before);
  });

  it('cannot fill the document caches with large distinct documents', async () => {
    for (let i = 0; i < 40; i++) {
      const filler = Array.from({ length: 2500 }, (_, k) => `f${k}: rideCount`).join(' ');
      expectClientError(await post(JSON.stringify({ query: `query Q${i} { ${filler} }` })));
    }
    expect(cluster.gateway.exitCode).toBeNull();
  });

  it('keeps `__proto__` and `constructor` aliases on the compiled mutation path', async () => {
    const res = await post(JSON.stringify({ query: `mutation { createUser(username: "proto", password: "${PASSWORD}") { __proto__: username constructor: username } }` }));
    expect(JSON.parse(res.text)).toMatchObject({ data: { createUser: { constructor: 'proto' } } });
    expect(Object.hasOwn((JSON.parse(res.text) as { data: { createUser: object } }).data.createUser, '__proto__')).toBe(true);
  });

  it('gets 4xx JSON, never a 500 or a stack, from REST for bad bodies and paths', async () => {
    const rest = (path: string, init: RequestInit = {}) => fetch(`${cluster.url}/api/v1${path}`, init).then(async (r) => ({ status: r.status, text: await r.text() }));
    const big = await rest('/users', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'x', password: 'y'.repeat(70_000) }) });
    expect(big.status).toBe(413);
    const encoding = await rest('/users', { method: 'PUT', headers: { 'content-type': 'application/json', 'content-encoding': 'zz' }, body: '{}' });
    expect(encoding.status).toBe(415);
    const charset = await rest('/users', { method: 'PUT', headers: { 'content-type': 'application/json; charset=klingon' }, body: '{}' });
    expect(charset.status).toBe(415);
    for (const path of ['/users/%E0%A4%A', '/rides/%ZZ', '/users/%']) {
      const res = await rest(path, { method: path.startsWith('/users') ? 'DELETE' : 'GET' });
      expect(res.status).toBe(400);
    }
    for (const res of [big, encoding, charset]) expectClientError(res);
    const log = fs.readFileSync(cluster.logFile, 'utf8');
    expect(log).not.toMatch(/"level":50[^\n]*REST request failed/);
  });

  it('cannot stall other clients by pipelining requests it never reads', async () => {
    const port = Number(new URL(cluster.url).port);
    // A route's rides: answered from the read cache, the cheapest request there is.
    const body = JSON.stringify({ query: '{ rides(source: 1, destination: 2) { id } }' });
    const request = `POST /graphql HTTP/1.1\r\nHost: ridedb\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const sockets: net.Socket[] = [];
    try {
      // Each connection writes 2,000 requests at once and never reads: before the bound,
      // Node's parser handed the gateway every one in a single turn of its event loop.
      const p99 = await p99During(async () => {
        const opened = await Promise.all(Array.from({ length: 20 }, () => tcpFrom(PIPELINE_ADDRESS, port)));
        for (const socket of opened) {
          socket.pause();
          sockets.push(socket);
          socket.write(request.repeat(2000));
        }
        await sleep(20);
      });
      expect(p99).toBeLessThan(1000);
      // A client that pipelines one past the bound: its answers in order, then 503 naming the
      // setting. Writes, so that none is answered before the last arrives (a cached read can be).
      const write = JSON.stringify({ query: 'mutation { joinRide(rideId: 999999999, username: "asha") { id } }' });
      const writeRequest = `POST /graphql HTTP/1.1\r\nHost: ridedb\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(write)}\r\n\r\n${write}`;
      const socket = await tcpFrom(PIPELINE_ADDRESS, port);
      sockets.push(socket);
      const text = await new Promise<string>((resolve) => {
        let received = '';
        socket.on('data', (d: Buffer) => (received += d.toString()));
        socket.once('close', () => resolve(received));
        socket.write(writeRequest.repeat(33));
      });
      expect(text.match(/HTTP\/1\.1 \d+/g)).toEqual([...Array<string>(32).fill('HTTP/1.1 200'), 'HTTP/1.1 503']);
      expect(text).toMatch(/"code":"UNAVAILABLE"/);
      expect(text).toMatch(/MAX_PIPELINED_REQUESTS/);
      expect(await (await fetch(`${cluster.url}/metrics`)).text()).toMatch(/^ridedb_connections_closed_total\{reason="pipelined"\} [1-9]/m);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it('cannot make reads wait for a log position that does not exist', async () => {
    const p99 = await p99During(async () => {
      const answers = await Promise.all(
        Array.from({ length: 100 }, () =>
          fetch(`${cluster.url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-dbaas-min-seq': '9007199254740991' },
            body: '{"query":"{ rideCount }"}',
          }).then((r) => r.json() as Promise<{ errors?: Array<{ message: string; extensions: { code: string } }> }>),
        ),
      );
      for (const a of answers) {
        expect(a.errors?.[0].extensions.code).toBe('BAD_USER_INPUT');
        expect(a.errors?.[0].message).toMatch(/no such log position yet/);
      }
    });
    expect(p99).toBeLessThan(1000);
  });
});

describe('a hostile websocket client', () => {
  it('meets the HTTP document limits: aliases, depth, size, tokens', async () => {
    const socket = await RawSocket.open(cluster.url);
    try {
      const aliases = Array.from({ length: 2000 }, (_, i) => `a${i}: rideCount`).join(' ');
      socket.subscribe('aliases', `{ ${aliases} }`);
      expect(JSON.stringify((await socket.next((m) => m.id === 'aliases')).payload)).toMatch(/more than 30 aliased fields/);
      socket.subscribe('deep', `{ users { ${'ridesCreated { riders { '.repeat(15)}username${' } }'.repeat(15)} } }`);
      expect(JSON.stringify((await socket.next((m) => m.id === 'deep')).payload)).toMatch(/query depth/);
      socket.subscribe('tokens', `{ ${'a '.repeat(45_000)}}`);
      expect(JSON.stringify((await socket.next((m) => m.id === 'tokens')).payload)).toMatch(/more that 10000 tokens[^]*GRAPHQL_PARSE_FAILED/);
    } finally {
      socket.close();
    }
    const big = await RawSocket.open(cluster.url);
    big.send(JSON.stringify({ id: 'big', type: 'subscribe', payload: { query: `{ rideCount } # ${'x'.repeat(4 * 2 ** 20)}` } }));
    expect((await big.closed).code).toBe(1009); // message too big
  });

  it('gets formatted errors with codes, as over HTTP', async () => {
    const socket = await RawSocket.open(cluster.url);
    try {
      socket.subscribe('reset', 'mutation { resetRequestCount }');
      const message = await socket.next((m) => m.id === 'reset' && m.type === 'next');
      expect(message.payload).toMatchObject({ errors: [{ extensions: { code: 'FORBIDDEN' } }] });
      expect(JSON.stringify(message.payload)).not.toMatch(STACK);
    } finally {
      socket.close();
    }
  });

  it('cannot hold more subscriptions than the limits, per connection and per address', async () => {
    const socket = await RawSocket.open(cluster.url);
    const others: RawSocket[] = [];
    try {
      for (let i = 0; i < 50; i++) socket.subscribe(`s${i}`, SUBSCRIBE);
      socket.subscribe('one-too-many', SUBSCRIBE);
      expect(JSON.stringify((await socket.next((m) => m.id === 'one-too-many')).payload)).toMatch(/MAX_SUBSCRIPTIONS_PER_CONNECTION/);
      for (let k = 0; k < 5; k++) {
        const other = await RawSocket.open(cluster.url);
        others.push(other);
        for (let i = 0; i < 50; i++) other.subscribe(`s${i}`, SUBSCRIBE);
      }
      const last = others[others.length - 1];
      await sleep(200);
      last.complete('s0');
      await sleep(100);
      last.subscribe('over-address', SUBSCRIBE);
      const refused = await RawSocket.open(cluster.url);
      others.push(refused);
      refused.subscribe('over', SUBSCRIBE);
      expect(JSON.stringify((await refused.next((m) => m.id === 'over')).payload)).toMatch(/MAX_SUBSCRIPTIONS_PER_ADDRESS/);
    } finally {
      socket.terminate();
      for (const o of others) o.terminate();
    }
    // Closing frees them: a new socket may subscribe again at once.
    await sleep(300);
    const again = await RawSocket.open(cluster.url);
    again.subscribe('again', 'subscription { clusterEvents { type } } ');
    await expect(again.next((m) => m.id === 'again' && m.type === 'error', 1000)).rejects.toThrow(/no matching message/); // not refused: it is open
    again.close();
  });

  it('cannot hold more connections than the limit per address, idle, HTTP or websocket, while other addresses are served', async () => {
    const port = Number(new URL(cluster.url).port);
    // Connections that never send a request hold a descriptor longest (Node's 60 s header
    // timeout): enough of them once left the gateway unable to accept anyone (EMFILE).
    const idle = await Promise.all(Array.from({ length: CONNECTIONS - 1 }, () => tcpFrom(FLOOD_ADDRESS, port)));
    const socket = await RawSocket.open(cluster.url, {}, { localAddress: FLOOD_ADDRESS });
    try {
      // A write on a refused connection: answered 503, and never run.
      const create = { query: 'mutation { createUser(username: "refused_writer", password: "0000000000000000000000000000000000000000") { username } }' };
      const refused = await httpFrom(FLOOD_ADDRESS, port, '/graphql', create);
      expect(refused).toMatch(/^HTTP\/1\.1 503 /);
      expect(refused).toMatch(/"code":"UNAVAILABLE"/);
      expect(refused).toMatch(/MAX_CONNECTIONS_PER_ADDRESS/);
      expect((await RawSocket.connect(cluster.url, {}, { localAddress: FLOOD_ADDRESS }).closed).code).toBe(1006);
      // Another address meanwhile: served, over HTTP and websockets.
      expect(await cluster.data('{ rideCount }')).toEqual({ rideCount: expect.any(Number) });
      expect(await cluster.data('{ user(username: "refused_writer") { username } }')).toEqual({ user: null });
      (await RawSocket.open(cluster.url)).close();
      expect(await (await fetch(`${cluster.url}/metrics`)).text()).toMatch(/^ridedb_connections_refused_total\{reason="address"\} [2-9]/m);
      // Room again once the gateway has seen one close (not after a guessed pause).
      idle.pop()!.destroy();
      await waitUntil('a connection from the address admitted again', async () => /^HTTP\/1\.1 200 /.test(await httpFrom(FLOOD_ADDRESS, port, '/livez')));
    } finally {
      for (const s of idle) s.destroy();
      socket.terminate();
    }
  });

  it('frees completed and abandoned subscriptions at once', async () => {
    const rounds = 6;
    for (let round = 0; round < rounds; round++) {
      const socket = await RawSocket.open(cluster.url);
      for (let i = 0; i < 400; i++) {
        socket.subscribe(`r${i}`, SUBSCRIBE);
        if (i % 40 === 39) await sleep(5);
        if (i >= 40) socket.complete(`r${i - 40}`);
      }
      await waitUntil('40 open on the socket', async () => (await openSubscriptions()) === 40, 5000);
      socket.terminate();
      const sockets = await Promise.all(Array.from({ length: 100 }, () => RawSocket.open(cluster.url)));
      sockets.forEach((s, i) => s.subscribe(`x${i}`, SUBSCRIBE));
      await sleep(50);
      for (const s of sockets) s.terminate();
    }
    // Completed, refused and abandoned: every one is gone, with no event arriving meanwhile.
    await waitUntil('no open subscription', async () => (await openSubscriptions()) === 0, 5000);
    expect(fs.readFileSync(cluster.logFile, 'utf8')).not.toMatch(/MaxListenersExceededWarning/);
    expect(cluster.gateway.exitCode).toBeNull();
  });
});

describe('after the attacks', () => {
  it('the gateway gives its memory back', async () => {
    // V8 shrinks an idle heap after some seconds (its memory reducer): wait for that.
    await waitUntil(`gateway RSS under ${Math.round(startRss + 50)} MB (start ${Math.round(startRss)} MB)`, async () => rssMb() < startRss + 50, 90_000);
  });
});
