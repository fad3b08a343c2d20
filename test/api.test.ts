import { execFileSync } from 'node:child_process';
import { Client } from 'pg';
import { PASSWORD, TestCluster } from './support/cluster';

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
    expect((await cluster.data<{ users: unknown[] }>('{ users { username } }')).users.length).toBeGreaterThan(1);
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

  it('never returns a password or a stack trace', async () => {
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

  it('honours X-DBaaS-Min-Seq from a client and eventual consistency on request', async () => {
    const w = await cluster.gql(CREATE_USER, { u: 'ryw_header', p: PASSWORD });
    const seq = w.headers.get('x-dbaas-seq')!;
    const r = await cluster.gql('{ user(username: "ryw_header") { username } }', {}, { 'x-dbaas-min-seq': seq });
    expect(r.data).toEqual({ user: { username: 'ryw_header' } });
    const e = await cluster.gql('{ rideCount }', {}, { 'x-dbaas-consistency': 'eventual' });
    expect(e.errors).toBeUndefined();
  });
});

describe('connections', () => {
  const rabbitConnections = async (): Promise<string[]> => {
    return execFileSync('rabbitmqctl', ['-q', 'list_connections', 'name'], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
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
    const pgBefore = await backends();
    await load('measured', 300, 8);
    expect(await rabbitConnections()).toEqual(amqpBefore);
    const pgAfter = await backends();
    expect([...pgAfter].filter((pid) => !pgBefore.has(pid))).toEqual([]);
  });
});
