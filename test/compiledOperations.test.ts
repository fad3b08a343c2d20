import fc from 'fast-check';
import { PASSWORD, TestCluster } from './support/cluster';

/**
 * The compiled read path (one SQL statement per query, JSON passed through) must answer
 * exactly what the resolver path answers. A query that also asks for a cluster field
 * (`requestCount`) takes the resolver path, so each query is asked both ways.
 */
let cluster: TestCluster;

const CREATE_USER = 'mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }';
const CREATE_RIDE = 'mutation($by: String!, $ts: DateTimeISO!, $s: Int!, $d: Int!) { createRide(createdBy: $by, timestamp: $ts, source: $s, destination: $d) { id } }';
const JOIN = 'mutation($r: Int!, $u: String!) { joinRide(rideId: $r, username: $u) { id } }';
const USERS = ['ana', 'bo', 'cy', 'dee'];
const rideIds: number[] = [];

beforeAll(async () => {
  // Generated selections nest lists freely; the cost limit is not what this file tests.
  cluster = await TestCluster.start({ MAX_QUERY_COST: '100000000' });
  for (const u of USERS) await cluster.data(CREATE_USER, { u, p: PASSWORD });
  let n = 0;
  for (const [s, d] of [
    [1, 2],
    [1, 2],
    [1, 2],
    [2, 3],
  ]) {
    for (const by of USERS.slice(0, 3)) {
      const ts = new Date(Date.now() + (n++ % 5) * 3_600_000 + 60_000).toISOString();
      const { createRide } = await cluster.data<{ createRide: { id: number } }>(CREATE_RIDE, { by, ts, s, d });
      rideIds.push(createRide.id);
    }
  }
  for (const [i, id] of rideIds.entries()) {
    for (const u of USERS.slice(0, i % 4)) await cluster.data(JOIN, { r: id, u });
  }
});
afterAll(async () => {
  await cluster?.stop();
});

/** The query with `requestCount` added at the root: the resolver path. */
const viaResolvers = (query: string) => query.replace(/\{/, '{ requestCount ');

async function bothWays(query: string, variables: Record<string, unknown> = {}) {
  const compiled = await cluster.gql(query, variables);
  const resolved = await cluster.gql(viaResolvers(query), variables);
  expect(compiled.errors).toBeUndefined();
  expect(resolved.errors).toBeUndefined();
  expect(compiled.extensions?.dbaas?.plan).toBe('compiled');
  expect(resolved.extensions?.dbaas?.plan).toBe('resolvers');
  const { requestCount: _count, ...resolvedData } = resolved.data as Record<string, unknown>;
  return { compiled: compiled.data, resolved: resolvedData };
}

describe('compiled queries', () => {
  it('answer the benchmark queries, nested lists and nulls as the resolvers do', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['query($s: Int!, $d: Int!) { rides(source: $s, destination: $d) { id timestamp createdBy { username } riders { username } } }', { s: 1, d: 2 }],
      [
        'query($id: Int!) { ride(id: $id) { id timestamp createdBy { username createdAt } source { name } destination { name } riders { username createdAt } } }',
        { id: rideIds[3] },
      ],
      ['{ ride(id: 999999) { id } user(username: "nobody") { username } }', {}],
      ['{ users { username createdAt ridesCreated { id riders { username } } ridesJoined { id createdBy { username ridesCreated { id } } } } }', {}],
      ['{ areas { id name } rideCount __typename }', {}],
      [
        'query($u: String!) { user(username: $u) { ...U ridesJoined { ...R } } } fragment U on User { username } fragment R on Ride { id source { ...on Area { name } } }',
        { u: 'ana' },
      ],
      [
        'query($yes: Boolean!) { a: rides(source: 2, destination: 3, upcomingOnly: false) { id @include(if: $yes) timestamp @skip(if: $yes) } b: rides(source: 1, destination: 2) { __typename id } b: rides(source: 1, destination: 2) { riders { username } } }',
        { yes: true },
      ],
    ];
    for (const [query, variables] of cases) {
      const { compiled, resolved } = await bothWays(query, variables);
      expect(compiled).toEqual(resolved);
    }
    const { compiled } = await bothWays('{ rides(source: 1, destination: 2) { id riders { username } } }');
    expect((compiled as { rides: unknown[] }).rides).toHaveLength(9);
  });

  it('answer random selections as the resolvers do', async () => {
    const user = (depth: number): fc.Arbitrary<string> =>
      fc
        .uniqueArray(fc.constantFrom('username', 'createdAt', '__typename', ...(depth > 0 ? ['ridesCreated', 'ridesJoined'] : [])), { minLength: 1 })
        .chain((fields) => fc.tuple(...fields.map((f) => (f.startsWith('rides') ? ride(depth - 1).map((s) => `${f} { ${s} }`) : fc.constant(f)))))
        .map((parts) => parts.join(' '));
    const area = fc.uniqueArray(fc.constantFrom('id', 'name', '__typename'), { minLength: 1 }).map((f) => f.join(' '));
    const ride = (depth: number): fc.Arbitrary<string> =>
      fc
        .uniqueArray(fc.constantFrom('id', 'timestamp', 'createdBy', 'source', 'destination', 'riders'), { minLength: 1 })
        .chain((fields) =>
          fc.tuple(
            ...fields.map((f) =>
              f === 'createdBy' || f === 'riders'
                ? user(depth).map((s) => `${f} { ${s} }`)
                : f === 'source' || f === 'destination'
                  ? area.map((s) => `${f} { ${s} }`)
                  : fc.constant(f),
            ),
          ),
        )
        .map((parts) => parts.join(' '));
    const root = fc.oneof(
      fc
        .tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.boolean(), ride(1))
        .map(([s, d, up, sel]) => `rides(source: ${s}, destination: ${d}, upcomingOnly: ${up}) { ${sel} }`),
      fc.tuple(fc.constantFrom(...rideIds, 1_000_000), ride(1)).map(([id, sel]) => `ride(id: ${id}) { ${sel} }`),
      fc.tuple(fc.constantFrom(...USERS, 'nobody'), user(1)).map(([u, sel]) => `user(username: "${u}") { ${sel} }`),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(root, { minLength: 1, maxLength: 3 }), async (fields) => {
        const query = `{ ${fields.map((f, i) => `f${i}: ${f}`).join(' ')} }`;
        const { compiled, resolved } = await bothWays(query);
        expect(compiled).toEqual(resolved);
      }),
      { numRuns: 60 },
    );
  });

  it('answer a repeated text by its variables and operation name, each time as the resolvers do', async () => {
    const text = 'query A($id: Int!) { ride(id: $id) { id riders { username } } } query B($s: Int!) { rides(source: $s, destination: 2) { id } }';
    for (const round of [1, 2]) {
      for (const [operationName, variables] of [
        ['A', { id: rideIds[0] }],
        ['A', { id: rideIds[5] }],
        ['B', { s: 1 }],
        ['B', { s: 3 }],
      ] as const) {
        const res = await fetch(`${cluster.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: text, operationName, variables }),
        });
        const { data } = (await res.json()) as { data: Record<string, unknown> };
        const single = operationName === 'A' ? 'query($id: Int!) { ride(id: $id) { id riders { username } } }' : 'query($s: Int!) { rides(source: $s, destination: 2) { id } }';
        const { resolved } = await bothWays(single, variables);
        expect({ round, operationName, variables, data }).toEqual({ round, operationName, variables, data: resolved });
      }
    }
  });

  it('are served at every spelling of the path Express routes to /graphql (any case, a trailing slash, a query string)', async () => {
    for (const path of ['/graphql', '/GraphQL', '/graphql/', '/graphql?x=1']) {
      const res = await fetch(`${cluster.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ rideCount }' }) });
      const body = (await res.json()) as { data?: { rideCount: number }; extensions?: { dbaas?: { plan?: string } } };
      expect({ path, status: res.status, plan: body.extensions?.dbaas?.plan, count: typeof body.data?.rideCount }).toEqual({
        path,
        status: 200,
        plan: 'compiled',
        count: 'number',
      });
    }
  });

  it('leave errors to the resolver path, which reports them as before', async () => {
    const badArea = await cluster.gql('{ rides(source: 0, destination: 1) { id } }');
    expect(badArea.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const badVariable = await cluster.gql('query($id: Int!) { ride(id: $id) { id } }', { id: 'seven' });
    expect(badVariable.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const unknownField = await cluster.gql('{ ride(id: 1) { colour } }');
    expect(unknownField.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('answer single mutations as the resolvers do, errors included', async () => {
    const ts = new Date(Date.now() + 7_200_000).toISOString();
    const selection = '{ __typename id timestamp createdBy { username __typename } source { id name } destination { name } riders { username createdAt } }';
    const compiled = await cluster.gql(`mutation($ts: DateTimeISO!) { made: createRide(createdBy: "ana", timestamp: $ts, source: 7, destination: 8) ${selection} }`, { ts });
    expect(compiled.extensions?.dbaas?.plan).toBe('compiled');
    expect(compiled.headers.get('x-dbaas-seq')).toBe(String(compiled.extensions?.dbaas?.seq));
    // Two mutations in one request run on the resolver path.
    const resolved = await cluster.gql(
      `mutation($ts: DateTimeISO!) { made: createRide(createdBy: "ana", timestamp: $ts, source: 7, destination: 8) ${selection} other: deleteRide(rideId: ${rideIds[0]}) }`,
      { ts },
    );
    expect(resolved.extensions?.dbaas?.plan).toBe('resolvers');
    const strip = (d: unknown) => ({ ...(d as { made: Record<string, unknown> }).made, id: 0 });
    expect(strip(compiled.data)).toEqual(strip(resolved.data));
    expect(strip(compiled.data)).toMatchObject({ __typename: 'Ride', timestamp: ts, createdBy: { username: 'ana', __typename: 'User' }, source: { id: 7 } });

    const failing = 'mutation { a: joinRide(rideId: 999999999, username: "ana") { id } }';
    const compiledError = await cluster.gql(failing);
    const resolvedError = await cluster.gql(failing.replace(/ }$/, ' b: deleteRide(rideId: 999999998) }'));
    expect(compiledError.extensions?.dbaas?.plan).toBe('compiled');
    expect(compiledError.data).toBeNull();
    expect(compiledError.errors?.[0]).toEqual(resolvedError.errors?.[0]);
    expect(compiledError.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('read their own writes', async () => {
    for (let i = 0; i < 5; i++) {
      const ts = new Date(Date.now() + 86_400_000).toISOString();
      const { createRide } = await cluster.data<{ createRide: { id: number } }>(CREATE_RIDE, { by: 'dee', ts, s: 5, d: 6 });
      const read = await cluster.gql('query($id: Int!) { ride(id: $id) { id createdBy { username } } }', { id: createRide.id });
      expect(read.extensions?.dbaas?.plan).toBe('compiled');
      expect(read.data).toEqual({ ride: { id: createRide.id, createdBy: { username: 'dee' } } });
    }
  });
});
