import { execFileSync } from 'node:child_process';
import { Client } from 'pg';
import { RpcClient } from '../gateway/rpcClient';
import { createLogger } from '../platform';
import { PASSWORD, queryOne, sleep, TestCluster, waitUntil } from './support/cluster';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start();
});
afterAll(async () => {
  await cluster?.stop();
});

const CREATE_USER = 'mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username createdAt } }';
const CREATE_RIDE = `mutation($by: String!, $ts: DateTimeISO!, $s: Int!, $d: Int!) {
  createRide(createdBy: $by, timestamp: $ts, source: $s, destination: $d) { id timestamp source { id } destination { id } createdBy { username } riders { username } }
}`;
const inOneHour = () => new Date(Date.now() + 3_600_000).toISOString();

describe('the GraphQL API', () => {
  it('starts with one master and one slave and reports health', async () => {
    const workers = await cluster.workers();
    expect(workers.map((w) => w.role).sort()).toEqual(['MASTER', 'SLAVE']);
    expect([...workers].sort((a, b) => a.pid - b.pid)).toEqual(workers);
    const health = await fetch(`${cluster.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });
  });

  it('answers a query from a slave and a mutation from the master', async () => {
    const workers = await cluster.workers();
    const master = workers.find((w) => w.role === 'MASTER')!;
    const slave = workers.find((w) => w.role === 'SLAVE')!;

    const created = await cluster.gql(CREATE_USER, { u: 'origin_check', p: PASSWORD });
    expect(created.errors).toBeUndefined();
    expect(created.extensions?.dbaas?.workerId).toBe(master.id);
    expect(created.extensions?.dbaas?.seq).toBeGreaterThan(0);
    expect(created.headers.get('x-dbaas-seq')).toBe(String(created.extensions?.dbaas?.seq));

    const read = await cluster.gql('{ user(username: "origin_check") { username } }');
    expect(read.data).toEqual({ user: { username: 'origin_check' } });
    expect(read.extensions?.dbaas?.workerId).toBe(slave.id);
  });

  it('runs every query and mutation of the contract through the queues', async () => {
    await cluster.data(CREATE_USER, { u: 'rider.one', p: PASSWORD });
    await cluster.data(CREATE_USER, { u: 'rider-two', p: PASSWORD });
    const ts = inOneHour();
    const { createRide: ride } = await cluster.data<{ createRide: { id: number } }>(CREATE_RIDE, { by: 'rider.one', ts, s: 3, d: 4 });
    expect(ride).toMatchObject({ timestamp: ts, source: { id: 3 }, destination: { id: 4 }, createdBy: { username: 'rider.one' }, riders: [] });

    const join = 'mutation($r: Int!, $u: String!) { joinRide(rideId: $r, username: $u) { riders { username } } }';
    const joined = await cluster.data(join, { r: ride.id, u: 'rider-two' });
    expect(joined).toEqual({ joinRide: { riders: [{ username: 'rider-two' }] } });
    // Idempotent: joining again changes nothing.
    expect(await cluster.data(join, { r: ride.id, u: 'rider-two' })).toEqual(joined);

    const q = await cluster.data<Record<string, unknown>>(
      `query($id: Int!) {
        ride(id: $id) { id riders { username ridesJoined { id } } createdBy { username ridesCreated { id } } }
        rides(source: 3, destination: 4) { id }
        past: rides(source: 3, destination: 4, upcomingOnly: false) { id }
        users { username }
        rideCount
        areas { id name }
      }`,
      { id: ride.id },
    );
    expect(q.ride).toEqual({
      id: ride.id,
      riders: [{ username: 'rider-two', ridesJoined: [{ id: ride.id }] }],
      createdBy: { username: 'rider.one', ridesCreated: [{ id: ride.id }] },
    });
    expect(q.rides).toEqual([{ id: ride.id }]);
    expect(q.past).toEqual([{ id: ride.id }]);
    expect((q.users as Array<{ username: string }>).map((u) => u.username)).toEqual(expect.arrayContaining(['rider.one', 'rider-two']));
    expect(q.rideCount).toBeGreaterThanOrEqual(1);
    expect((q.areas as Array<{ id: number }>).map((a) => a.id)).toEqual(expect.arrayContaining([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));

    expect(await cluster.data('mutation($r: Int!) { deleteRide(rideId: $r) }', { r: ride.id })).toEqual({ deleteRide: true });
    expect(await cluster.data('query($id: Int!) { ride(id: $id) { id } }', { id: ride.id })).toEqual({ ride: null });

    // Deleting a user takes their rides and memberships along.
    const { createRide: second } = await cluster.data<{ createRide: { id: number } }>(CREATE_RIDE, { by: 'rider.one', ts, s: 1, d: 2 });
    await cluster.data(join, { r: second.id, u: 'rider-two' });
    expect(await cluster.data('mutation { deleteUser(username: "rider-two") }')).toEqual({ deleteUser: true });
    expect(await cluster.data('query($id: Int!) { ride(id: $id) { riders { username } } }', { id: second.id })).toEqual({ ride: { riders: [] } });
    await cluster.data('mutation { deleteUser(username: "rider.one") }');
    expect(await cluster.data('query($id: Int!) { ride(id: $id) { id } }', { id: second.id })).toEqual({ ride: null });
  });

  it('lists upcoming rides by timestamp and leaves past ones out', async () => {
    await cluster.data(CREATE_USER, { u: 'timekeeper', p: PASSWORD });
    const at = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString();
    for (const h of [5, -2, 1, 3]) await cluster.data(CREATE_RIDE, { by: 'timekeeper', ts: at(h), s: 7, d: 8 });
    const { rides } = await cluster.data<{ rides: Array<{ timestamp: string }> }>('{ rides(source: 7, destination: 8) { timestamp } }');
    const times = rides.map((r) => Date.parse(r.timestamp));
    expect(times).toHaveLength(3);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(times.every((t) => t > Date.now())).toBe(true);
  });
});

describe('the rules of docs/contract.md section 3.3', () => {
  const codeOf = (res: { errors?: Array<{ extensions?: { code?: string } }> }) => res.errors?.[0]?.extensions?.code;

  it('rejects bad usernames and passwords with BAD_USER_INPUT', async () => {
    for (const u of ['', 'a'.repeat(65), 'with space', 'emoji🙂', "o'brien"]) {
      expect(codeOf(await cluster.gql(CREATE_USER, { u, p: PASSWORD }))).toBe('BAD_USER_INPUT');
    }
    for (const p of ['', 'abc', PASSWORD + '0', 'g'.repeat(40)]) {
      expect(codeOf(await cluster.gql(CREATE_USER, { u: 'valid_name', p }))).toBe('BAD_USER_INPUT');
    }
  });

  it('rejects unknown or identical areas and reports missing things as NOT_FOUND', async () => {
    await cluster.data(CREATE_USER, { u: 'area_tester', p: PASSWORD });
    expect(codeOf(await cluster.gql(CREATE_RIDE, { by: 'area_tester', ts: inOneHour(), s: 1, d: 1 }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await cluster.gql(CREATE_RIDE, { by: 'area_tester', ts: inOneHour(), s: 1, d: 9999 }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await cluster.gql(CREATE_RIDE, { by: 'nobody_here', ts: inOneHour(), s: 1, d: 2 }))).toBe('NOT_FOUND');
    expect(codeOf(await cluster.gql('mutation { deleteRide(rideId: 987654) }'))).toBe('NOT_FOUND');
    expect(codeOf(await cluster.gql('mutation { deleteUser(username: "nobody_here") }'))).toBe('NOT_FOUND');
    expect(codeOf(await cluster.gql('mutation { joinRide(rideId: 987654, username: "area_tester") }'.replace('}', '{ id } }')))).toBe('NOT_FOUND');
  });

  it('reports a taken username as CONFLICT, and the failed write changes nothing', async () => {
    await cluster.data(CREATE_USER, { u: 'taken', p: PASSWORD });
    const before = await cluster.data<{ users: unknown[] }>('{ users { username createdAt } }');
    expect(codeOf(await cluster.gql(CREATE_USER, { u: 'taken', p: PASSWORD }))).toBe('CONFLICT');
    expect(await cluster.data('{ users { username createdAt } }')).toEqual(before);
  });

  it('requires the admin token for admin operations (FORBIDDEN otherwise)', async () => {
    for (const op of ['clearDatabase', 'resetRequestCount', 'crashMaster { id }', 'crashSlave { id }', 'scaleSlaves(count: 2) { epoch }']) {
      const res = await cluster.gql(`mutation { ${op} }`, {}, { authorization: 'Bearer wrong' });
      expect(codeOf(res)).toBe('FORBIDDEN');
    }
    expect((await cluster.workers()).length).toBe(2);
  });

  it('stores input shaped like SQL injection literally and never executes it', async () => {
    const evil = "x'); DROP TABLE users; --";
    const res = await cluster.gql(CREATE_USER, { u: evil, p: PASSWORD });
    expect(codeOf(res)).toBe('BAD_USER_INPUT');
    const lookup = await cluster.gql('query($u: String!) { user(username: $u) { username } }', { u: "a' OR '1'='1" });
    expect(codeOf(lookup)).toBe('BAD_USER_INPUT');
    // A legal name with SQL-ish characters is stored as it is.
    await cluster.data(CREATE_USER, { u: 'drop--table.users', p: PASSWORD });
    expect(await cluster.data('{ user(username: "drop--table.users") { username } }')).toEqual({ user: { username: 'drop--table.users' } });
    // Quotes do reach SQL in text the worker takes as it comes: a password hash (the
    // gateway's scrypt output, but the worker trusts nothing on the broker). Two at once
    // go through the master's batched insert (text arrays) and the replicas' apply.
    const hashes = [evil, `{"a,b"}\\'); DELETE FROM rides; --`];
    const rpc = await RpcClient.connect(cluster.config.amqpUrl, cluster.names, 'injection', cluster.config, createLogger('silent', {}));
    try {
      await Promise.all(hashes.map((passwordHash, i) => rpc.write('createUser', { username: `inj${i}`, passwordHash })));
    } finally {
      await rpc.close();
    }
    const workers = await cluster.workers();
    await waitUntil('every replica with both users', async () => {
      const counts = await Promise.all(
        workers.map((w) => queryOne<{ n: number }>(cluster.workerDatabaseUrl(w.id), "SELECT count(*)::int AS n FROM users WHERE username IN ('inj0', 'inj1')")),
      );
      return counts.every((c) => c.n === 2);
    });
    for (const w of workers) {
      const { hashes: stored } = await queryOne<{ hashes: string[] }>(
        cluster.workerDatabaseUrl(w.id),
        "SELECT array_agg(password_hash ORDER BY username) AS hashes FROM users WHERE username IN ('inj0', 'inj1')",
      );
      expect(stored).toEqual(hashes);
    }
    // And the table they would have dropped still answers, with every user in it.
    const { users } = await cluster.data<{ users: Array<{ username: string }> }>('{ users { username } }');
    expect(users.map((u) => u.username)).toEqual(expect.arrayContaining(['drop--table.users', 'inj0', 'inj1']));
  });

  it('refuses documents nested deeper than MAX_QUERY_DEPTH or with too many aliases, before any RPC', async () => {
    const deep = '{ users { ridesCreated { riders { ridesJoined { riders { ridesCreated { riders { ridesJoined { riders { username } } } } } } } } } }';
    const res = await cluster.gql(deep);
    expect(res.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(res.errors?.[0]?.message).toMatch(/depth 9 exceeds the limit of 8/);
    const aliases = `{ ${Array.from({ length: 31 }, (_, i) => `a${i}: rideCount`).join(' ')} }`;
    expect((await cluster.gql(aliases)).errors?.[0]?.message).toMatch(/more than 30 aliased fields/);
    expect((await cluster.gql(`{ ${Array.from({ length: 30 }, (_, i) => `a${i}: rideCount`).join(' ')} }`)).errors).toBeUndefined();
  });

  it('never returns a password, its hash or a stack trace', async () => {
    const password = '5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8'; // SHA-1, as clients send it
    await cluster.data(CREATE_USER, { u: 'secretive', p: password });
    const master = await cluster.master();
    const { password_hash: hash } = await queryOne<{ password_hash: string }>(cluster.workerDatabaseUrl(master.id), "SELECT password_hash FROM users WHERE username = 'secretive'");
    // Every field a client can select on a user, whatever the schema grows to.
    const { __type } = await cluster.data<{ __type: { fields: Array<{ name: string; type: { kind: string; ofType: { kind: string } | null } }> } }>(
      '{ __type(name: "User") { fields { name type { kind ofType { kind } } } } }',
    );
    const scalars = __type.fields.filter((f) => f.type.kind === 'SCALAR' || f.type.ofType?.kind === 'SCALAR').map((f) => f.name);
    expect(scalars).toContain('username');
    const bodies = [
      JSON.stringify(await cluster.gql(`{ user(username: "secretive") { ${scalars.join(' ')} } users { ${scalars.join(' ')} } }`)),
      JSON.stringify(await cluster.gql(CREATE_USER, { u: 'secretive', p: password })), // CONFLICT
      await (await fetch(`${cluster.url}/api/v1/users`)).text(),
    ];
    for (const body of bodies) {
      expect(body).not.toContain(hash);
      expect(body).not.toContain(password);
    }
    expect(bodies[0]).toContain('secretive');
    const res = await cluster.gql('{ users { username password } }');
    expect(res.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(JSON.stringify(res)).not.toMatch(/stacktrace|at .*\.js:\d+/);
  });

  it('counts API requests and resets the count with the admin token', async () => {
    expect(await cluster.admin('mutation { resetRequestCount }')).toMatchObject({ data: { resetRequestCount: true } });
    await cluster.data('{ areas { id } }');
    await cluster.data('{ rideCount }');
    expect(await cluster.data('{ requestCount }')).toEqual({ requestCount: 2 });
  });

  it('clears the database with the admin token', async () => {
    expect((await cluster.admin('mutation { clearDatabase }')).data).toEqual({ clearDatabase: true });
    expect(await cluster.data('{ users { username } rideCount }')).toEqual({ users: [], rideCount: 0 });
    expect((await cluster.data<{ areas: unknown[] }>('{ areas { id } }')).areas.length).toBeGreaterThanOrEqual(10);
  });
});

describe('read-your-writes', () => {
  it('sees each of 200 writes in the read that immediately follows it', async () => {
    let missed = 0;
    for (let i = 0; i < 200; i++) {
      await cluster.data(CREATE_USER, { u: `ryw_${i}`, p: PASSWORD });
      const { user } = await cluster.data<{ user: { username: string } | null }>('query($u: String!) { user(username: $u) { username } }', { u: `ryw_${i}` });
      if (user?.username !== `ryw_${i}`) missed++;
    }
    expect(missed).toBe(0);
  });

  it('honours X-DBaaS-Min-Seq from a client on another gateway, and eventual consistency does not wait', async () => {
    await cluster.data(CREATE_USER, { u: 'ryw_header', p: PASSWORD });
    const other = await cluster.addGateway();
    const slave = (await cluster.workers()).find((w) => w.role === 'SLAVE')!;
    const blocker = new Client({ connectionString: cluster.workerDatabaseUrl(slave.id) });
    await blocker.connect();
    try {
      // The slave falls behind: it cannot apply a new user while `users` is locked here,
      // nor the ride written after it; reads of `rides` alone are not blocked.
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
      await cluster.data(CREATE_USER, { u: 'ryw_lagged', p: PASSWORD });
      const created = await cluster.gql<{ createRide: { id: number } }>(
        'mutation { createRide(createdBy: "ryw_header", timestamp: "2035-05-05T05:05:05Z", source: 5, destination: 6) { id } }',
      );
      const seq = created.headers.get('x-dbaas-seq')!;
      const id = created.data!.createRide.id;
      const read = `{ ride(id: ${id}) { id } }`;

      // Eventual: the lagging slave answers at once, without the ride.
      expect((await cluster.gql(read, {}, { 'x-dbaas-consistency': 'eventual' })).data).toEqual({ ride: null });
      // Another gateway, which did not make the write: without the header it cannot know.
      expect((await other.gql(read)).data).toEqual({ ride: null });
      // With the header it waits for the slave to reach the seq.
      let answered = false;
      const strong = other.gql<{ ride: { id: number } | null }>(read, {}, { 'x-dbaas-min-seq': seq }).finally(() => (answered = true));
      await sleep(1000);
      expect(answered).toBe(false);
      await blocker.query('ROLLBACK');
      expect((await strong).data).toEqual({ ride: { id } });
    } finally {
      await blocker.end();
      await other.stopGateway();
    }
  });
});

describe('connections', () => {
  // This cluster's connections only: other test files run beside this one on the same broker.
  const rabbitConnections = async (): Promise<string[]> => {
    const own = `{"connection_name","${cluster.names.connectionPrefix}`;
    const lines = execFileSync('rabbitmqctl', ['-q', 'list_connections', '--no-table-headers', 'name', 'client_properties'], { encoding: 'utf8' }).split('\n');
    return lines
      .filter((line) => line.includes(own))
      .map((line) => line.split('\t')[0])
      .sort();
  };
  const backends = async (): Promise<Set<number>> => {
    const client = new Client({ connectionString: cluster.config.databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT pid FROM pg_stat_activity WHERE starts_with(datname, $1)', [cluster.names.workerDatabasePrefix]);
      return new Set(rows.map((r: { pid: number }) => r.pid));
    } finally {
      await client.end();
    }
  };
  const load = async (tag: string, n: number, concurrency: number) => {
    let i = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (i < n) {
          const k = i++;
          if (k % 5 === 0) await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: `conn_${tag}_${k}`, p: PASSWORD });
          else await cluster.data('{ rides(source: 1, destination: 2) { id riders { username } } rideCount }');
        }
      }),
    );
  };

  it('sets up no broker or database connection per request', async () => {
    await load('warm', 300, 24); // warm-up fills the pools
    const amqpBefore = await rabbitConnections();
    expect(amqpBefore.length).toBeGreaterThanOrEqual(3); // the gateway's two and a worker's, at least
    const pgBefore = await backends();
    await load('measured', 300, 8);
    expect(await rabbitConnections()).toEqual(amqpBefore);
    const pgAfter = await backends();
    expect([...pgAfter].filter((pid) => !pgBefore.has(pid))).toEqual([]);
  });
});
