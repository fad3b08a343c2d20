import fc from 'fast-check';
import fs from 'node:fs';
import { TestCluster } from './support/cluster';
import { RawSocket } from './support/rawSocket';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start();
});
afterAll(async () => {
  await cluster?.stop();
});

const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);
const CODES = new Set([
  'BAD_USER_INPUT',
  'NOT_FOUND',
  'CONFLICT',
  'FORBIDDEN',
  'GRAPHQL_VALIDATION_FAILED',
  'GRAPHQL_PARSE_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'OPERATION_RESOLUTION_FAILURE',
]);
const STACK = /\bat [^\s]+ \([^)]*\.[jt]s:\d+:\d+\)|node_modules\//;

const OPERATIONS = [
  'mutation($a: String!, $b: String!) { createUser(username: $a, password: $b) { username } }',
  'mutation($a: String!) { deleteUser(username: $a) }',
  'mutation($a: String!, $t: DateTimeISO!, $s: Int!, $d: Int!) { createRide(createdBy: $a, timestamp: $t, source: $s, destination: $d) { id } }',
  'mutation($r: Int!, $a: String!) { joinRide(rideId: $r, username: $a) { id } }',
  'mutation($r: Int!) { deleteRide(rideId: $r) }',
  'query($a: String!) { user(username: $a) { username ridesCreated { id } } }',
  'query($s: Int!, $d: Int!, $u: Boolean) { rides(source: $s, destination: $d, upcomingOnly: $u) { id } }',
  'query($r: Int!) { ride(id: $r) { id riders { username } } }',
  'mutation($n: Int!) { scaleSlaves(count: $n) { epoch } }',
];

const anyValue = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.constantFrom("x'); DROP TABLE users; --", '3da541559918a808c2402bba5012f6c60b27661c', '2030-01-01T00:00:00Z', '', 'a'.repeat(70), '\u0000', '1e309'),
  fc.integer(),
  fc.integer({ min: -5, max: 20 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  fc.jsonValue({ maxDepth: 3 }),
);

// Each run draws new documents; 4,000 keeps the suite within its time budget. FUZZ_STRESS_RUNS=… for a deeper run.
const STRESS_RUNS = Number(process.env.FUZZ_STRESS_RUNS ?? 4000);
const FIELDS = ['rideCount', 'users { username }', 'areas { id }', 'cluster { epoch }', '__typename', 'nope', 'rides(source: 2, destination: 4) { id riders { username } }'];

/** Documents shaped to be expensive to parse or validate: fragment fans, deep nesting, many aliases. */
const stressDocument = fc.oneof(
  fc.record({ levels: fc.integer({ min: 1, max: 40 }), width: fc.integer({ min: 1, max: 4 }), leaf: fc.constantFrom(...FIELDS) }).map(({ levels, width, leaf }) => {
    const fragments = Array.from({ length: levels }, (_, i) => `fragment F${i} on Query { ${`...F${i + 1} `.repeat(width)}}`);
    return `query Fan { ...F0 } ${fragments.join(' ')} fragment F${levels} on Query { ${leaf} }`;
  }),
  fc
    .record({ depth: fc.integer({ min: 1, max: 400 }), chain: fc.constantFrom('ridesCreated { riders { ', 'a { ', 'ride(id: 1) { createdBy { ') })
    .map(({ depth, chain }) => `{ users { ${chain.repeat(depth)}username${' }'.repeat(chain.split('{').length - 1).repeat(depth)} } }`),
  fc
    .record({ count: fc.integer({ min: 1, max: 300 }), field: fc.constantFrom(...FIELDS) })
    .map(({ count, field }) => `{ ${Array.from({ length: count }, (_, i) => `a${i}: ${field}`).join(' ')} }`),
  fc.integer({ min: 1, max: 1000 }).map((depth) => `{ rides(source: ${'['.repeat(depth)}2${']'.repeat(depth)}, destination: 4) { id } }`),
  fc
    .array(fc.constantFrom('{', '}', '...', 'F', 'on', 'Query', 'fragment', 'rideCount', '(', ')', '$a', ':', '[', ']', '@skip(if: true)', '"x"'), { maxLength: 400 })
    .map((tokens) => tokens.join(' ')),
);

function check(status: number, text: string, where: string): void {
  if (status >= 500) throw new Error(`${where}: HTTP ${status}: ${text.slice(0, 300)}`);
  if (STACK.test(text)) throw new Error(`${where}: stack trace in response: ${text.slice(0, 300)}`);
}

describe('fuzzing', () => {
  it(`answers ${RUNS} generated GraphQL requests with a valid result or a well-formed error`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          {
            weight: 8,
            arbitrary: fc.record({ query: fc.constantFrom(...OPERATIONS), variables: fc.dictionary(fc.constantFrom('a', 'b', 't', 's', 'd', 'r', 'u', 'n'), anyValue) }),
          },
          { weight: 1, arbitrary: fc.record({ query: fc.string({ maxLength: 200 }), variables: fc.constant({}) }) },
          { weight: 1, arbitrary: fc.record({ query: fc.jsonValue({ maxDepth: 2 }), variables: fc.jsonValue({ maxDepth: 2 }) }) },
        ),
        async (body) => {
          const res = await fetch(`${cluster.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
          const text = await res.text();
          check(res.status, text, `POST /graphql ${JSON.stringify(body).slice(0, 200)}`);
          const json = JSON.parse(text) as { data?: unknown; errors?: Array<{ extensions?: { code?: string } }> };
          for (const e of json.errors ?? []) {
            if (!CODES.has(e.extensions?.code ?? '')) throw new Error(`unexpected error code ${e.extensions?.code}: ${text.slice(0, 300)}`);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it(`answers ${RUNS} generated REST requests with the original status codes, never a 5xx`, async () => {
    const paths = ['/users', '/users/alice', '/rides', '/rides/1', '/rides/count', '/_count', '/db/clear', '/worker/list', '/rides/abc', '/users/%27%20OR%201=1'];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'PATCH'),
        fc.constantFrom(...paths),
        fc.option(fc.record({ source: anyValue, destination: anyValue }), { nil: undefined }),
        fc.oneof(
          fc.jsonValue({ maxDepth: 3 }),
          fc.record({ username: anyValue, password: anyValue, created_by: anyValue, timestamp: anyValue, source: anyValue, destination: anyValue }, { requiredKeys: [] }),
        ),
        async (method, path, query, body) => {
          const param = (v: unknown) => encodeURIComponent(typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));
          const qs = query ? `?source=${param(query.source)}&destination=${param(query.destination)}` : '';
          const res = await fetch(`${cluster.url}/api/v1${path}${qs}`, {
            method,
            headers: { 'content-type': 'application/json' },
            body: method === 'GET' ? undefined : JSON.stringify(body),
          });
          const text = await res.text();
          check(res.status, text, `${method} ${path}${qs} ${JSON.stringify(body).slice(0, 200)}`);
          if (![200, 201, 204, 400, 403, 405].includes(res.status)) throw new Error(`${method} ${path}: unexpected status ${res.status}`);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it(`answers ${STRESS_RUNS} documents built to stress validation, over HTTP and websocket, with data or a coded error`, async () => {
    const socket = await RawSocket.open(cluster.url);
    let n = 0;
    try {
      await fc.assert(
        fc.asyncProperty(stressDocument, fc.constantFrom('http', 'http-graphql-response', 'ws'), async (query, transport) => {
          if (transport === 'ws') {
            const id = `q${n++}`;
            socket.subscribe(id, query);
            const answer = await socket.next((m) => m.id === id && (m.type === 'next' || m.type === 'error'));
            const text = JSON.stringify(answer.payload);
            check(200, text, `ws ${query.slice(0, 200)}`);
            const errors = (answer.type === 'error' ? answer.payload : ((answer.payload as { errors?: unknown[] }).errors ?? [])) as Array<{ extensions?: { code?: string } }>;
            for (const e of errors) if (!CODES.has(e.extensions?.code ?? '')) throw new Error(`ws: unexpected error code ${e.extensions?.code}: ${text.slice(0, 300)}`);
            return;
          }
          const accept = transport === 'http' ? 'application/json' : 'application/graphql-response+json';
          const res = await fetch(`${cluster.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', accept }, body: JSON.stringify({ query }) });
          const text = await res.text();
          check(res.status, text, `POST /graphql ${query.slice(0, 200)}`);
          const json = JSON.parse(text) as { errors?: Array<{ extensions?: { code?: string } }> };
          for (const e of json.errors ?? []) if (!CODES.has(e.extensions?.code ?? '')) throw new Error(`unexpected error code ${e.extensions?.code}: ${text.slice(0, 300)}`);
        }),
        { numRuns: STRESS_RUNS },
      );
    } finally {
      socket.close();
    }
  });

  it('keeps the gateway up with bounded memory through 400 MB of near-limit documents', async () => {
    // Self-contained (the tests above may or may not have run): a gateway that kept any
    // part of what it was sent would pass 400 MB here, or die at its heap limit.
    const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${cluster.gateway.pid}/status`, 'utf8'))?.[1]) / 1024;
    const filler = 'x'.repeat(1_000_000);
    const queries = [`{ user(username: "${filler}") { username } }`, `# ${filler}\n{ rideCount }`, `{ rides(source: 1, destination: 2) { id } } # ${filler}`];
    let sent = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (sent < 400) {
          const query = queries[sent++ % queries.length];
          const res = await fetch(`${cluster.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
          expect(res.status).toBeLessThan(500);
          await res.arrayBuffer();
        }
      }),
    );
    expect(cluster.gateway.exitCode).toBeNull();
    expect((await fetch(`${cluster.url}/healthz`)).status).toBe(200);
    expect(rssMb()).toBeLessThan(400);
  });
});
