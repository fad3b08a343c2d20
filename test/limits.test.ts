import { Client } from 'pg';
import type { FieldSelection } from '../schema';
import { runSelections } from '../worker/selectionSql';
import { appliedSeqOf, PASSWORD, TestCluster, waitUntil } from './support/cluster';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start({ MUTATIONS_PER_MINUTE_PER_IP: '5', CORS_ORIGINS: 'http://allowed.example' });
});
afterAll(async () => {
  await cluster?.stop();
});

const CREATE_USER = 'mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }';

describe('request limits', () => {
  it('limits writes per client address with UNAVAILABLE, and leaves reads alone', async () => {
    for (let i = 0; i < 5; i++) expect((await cluster.gql(CREATE_USER, { u: `limited_${i}`, p: PASSWORD })).errors).toBeUndefined();
    const sixth = await cluster.gql(CREATE_USER, { u: 'limited_5', p: PASSWORD });
    expect(sixth.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
    expect(sixth.errors?.[0]?.message).toMatch(/rate limit/);
    const rest = await fetch(`${cluster.url}/api/v1/users`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'limited_rest', password: PASSWORD }),
    });
    expect(rest.status).toBe(503);
    expect((await cluster.data<{ users: unknown[] }>('{ users { username } }')).users).toHaveLength(5);
  });

  it('sends CORS headers only to the configured origins', async () => {
    const allowed = await fetch(`${cluster.url}/graphql`, {
      method: 'POST',
      headers: { origin: 'http://allowed.example', 'content-type': 'application/json' },
      body: '{"query":"{ rideCount }"}',
    });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://allowed.example');
    const other = await fetch(`${cluster.url}/graphql`, {
      method: 'POST',
      headers: { origin: 'http://evil.example', 'content-type': 'application/json' },
      body: '{"query":"{ rideCount }"}',
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses request bodies over the size limit', async () => {
    const big = JSON.stringify({ query: `{ rideCount } # ${'x'.repeat(2 * 2 ** 20)}` });
    const res = await fetch(`${cluster.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    expect(res.status).toBe(413);
  });
});

/** A second cluster, for bounds small enough to reach in a test. */
let small: TestCluster;
beforeAll(async () => {
  small = await TestCluster.start({ MAX_RIDERS_PER_RIDE: '3', MAX_ANSWER_BYTES: '2000', MUTATIONS_PER_MINUTE_PER_IP: '0' });
});
afterAll(async () => {
  await small?.stop();
});

describe('a large answer', () => {
  it('is BAD_USER_INPUT past MAX_ANSWER_BYTES, alone or among reads answered in one statement, and the others are answered', async () => {
    // 30 users of ~60 bytes each in an answer: ~2 KB of JSON.
    for (let i = 0; i < 30; i++) await small.data(CREATE_USER, { u: `large_answer_user_${String(i).padStart(2, '0')}`, p: PASSWORD });
    const page = (first: number) => small.gql<{ users: unknown[] }>(`{ users(first: ${first}) { username createdAt } }`);
    const alone = await page(30);
    expect(alone.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(alone.errors?.[0]?.message).toMatch(/larger than MAX_ANSWER_BYTES \(2000 bytes/);
    expect((await page(3)).data?.users).toHaveLength(3);
    // Reads of one shape that reach a replica together are answered in one statement: only
    // the large one fails (the statement a slave runs, on a replica's own database).
    const users = (first: number): FieldSelection[] => [
      {
        key: 'users',
        field: 'users',
        args: { first },
        select: [
          { key: 'username', field: 'username' },
          { key: 'createdAt', field: 'createdAt' },
        ],
      },
    ];
    const db = new Client({ connectionString: small.workerDatabaseUrl((await small.workers())[0].id) });
    await db.connect();
    try {
      const [large, one, two] = await runSelections(db, [users(29), users(1), users(2)], 2000);
      expect(large).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringMatching(/MAX_ANSWER_BYTES/) });
      expect([one, two].map((doc) => (JSON.parse(doc as string) as { users: unknown[] }).users.length)).toEqual([1, 2]);
    } finally {
      await db.end();
    }
  });
});

describe('a full ride', () => {
  it('takes MAX_RIDERS_PER_RIDE riders, however many join at once; more are CONFLICT, a rider joining again still gets the ride', async () => {
    const riders = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'];
    for (const u of ['host', ...riders]) await small.data(CREATE_USER, { u, p: PASSWORD });
    const { createRide } = await small.data<{ createRide: { id: number } }>(
      'mutation { createRide(createdBy: "host", timestamp: "2041-01-01T00:00:00Z", source: 5, destination: 6) { id } }',
    );
    const JOIN = 'mutation($r: Int!, $u: String!) { joinRide(rideId: $r, username: $u) { riders { username } } }';
    // At once: the master may take them in one batch, where each join sees those before it.
    const answers = await Promise.all(riders.map((u) => small.gql(JOIN, { r: createRide.id, u })));
    const joined = riders.filter((_, k) => !answers[k].errors);
    expect(joined).toHaveLength(3);
    for (const refused of answers.filter((a) => a.errors)) {
      expect(refused.errors?.[0]?.extensions?.code).toBe('CONFLICT');
      expect(refused.errors?.[0]?.message).toMatch(/full.*MAX_RIDERS_PER_RIDE/);
    }
    const again = await small.gql<{ joinRide: { riders: Array<{ username: string }> } }>(JOIN, { r: createRide.id, u: joined[0] });
    expect(again.errors).toBeUndefined();
    expect(again.data?.joinRide.riders.map((r) => r.username).sort()).toEqual([...joined].sort());
    const { ride } = await small.data<{ ride: { riders: unknown[] } }>(`{ ride(id: ${createRide.id}) { riders { username } } }`);
    expect(ride.riders).toHaveLength(3);

    // A ride over the bound (from before it, or a lowered one; made here with SQL in every
    // replica alike) takes no join, not even its riders' own: each would log it whole.
    const seq = Number(again.extensions?.dbaas?.seq);
    const outsider = riders.find((u) => !joined.includes(u))!;
    for (const w of await small.workers()) {
      await waitUntil(`${w.id} at seq ${seq}`, async () => (await appliedSeqOf(small.workerDatabaseUrl(w.id))) >= seq, 30_000);
      const db = new Client({ connectionString: small.workerDatabaseUrl(w.id) });
      await db.connect();
      try {
        await db.query('INSERT INTO ride_riders (ride_id, username, joined_at) VALUES ($1, $2, now())', [createRide.id, outsider]);
      } finally {
        await db.end();
      }
    }
    const over = await small.gql(JOIN, { r: createRide.id, u: joined[0] });
    expect(over.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect(over.errors?.[0]?.message).toMatch(/more riders than MAX_RIDERS_PER_RIDE/);
  });
});
