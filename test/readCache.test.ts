import fc from 'fast-check';
import { createClient } from 'graphql-ws';
import { Client } from 'pg';
import WebSocket from 'ws';
import { MAX_LOGGED_RIDES } from '../schema';
import { appliedSeqOf, PASSWORD, sleep, TestCluster, waitUntil } from './support/cluster';

// The read cache (issue 16): a cached answer never differs from what a replica answers at
// the same log position, after every kind of write and a failover. One gateway keeps a
// cache, the other none (READ_CACHE_BYTES=0); both serve the same cluster.
let cached: TestCluster;
let uncached: TestCluster;
beforeAll(async () => {
  cached = await TestCluster.start({ MUTATIONS_PER_MINUTE_PER_IP: '0' });
  uncached = await cached.addGateway({ READ_CACHE_BYTES: '0' });
});
afterAll(async () => {
  await uncached?.stopGateway();
  await cached?.stop();
});

const ROUTES: Array<[number, number]> = [
  [1, 2],
  [2, 1],
  [3, 4],
];
const future = (minutes: number) => new Date(Date.now() + 3_600_000 + minutes * 60_000).toISOString();

interface World {
  users: string[];
  rides: number[];
  seq: number;
  hits: number;
  compared: number;
}

/** The queries compared after each write: every root field, nested lists, pages, counts. */
function queries(world: World): string[] {
  const someRides = [...world.rides.slice(-3), (world.rides.at(-1) ?? 0) + 1000];
  const someUsers = [...world.users.slice(0, 2), 'nobody'];
  return [
    '{ rides(source: 1, destination: 2) { id timestamp cursor createdBy { username } riders { username } } }',
    '{ rides(source: 2, destination: 1, upcomingOnly: false) { id riders { username createdAt } } }',
    '{ page: rides(source: 3, destination: 4, first: 2) { id } n: rideCount }',
    '{ users(first: 5) { username ridesJoined { id riders { username } } } }',
    '{ rideCount areas { id } }',
    ...someRides.map((id) => `{ ride(id: ${id}) { id source { name } createdBy { username ridesCreated { id } } riders { username } } }`),
    ...someUsers.map((u) => `{ user(username: "${u}") { username ridesCreated { id riders { username } } ridesJoined { id createdBy { username } riders { username } } } }`),
  ];
}

/** Every query twice through the caching gateway (the second is usually a hit), once through the other, all at the world's seq. */
async function compareAll(world: World): Promise<void> {
  const at = { 'x-dbaas-min-seq': String(world.seq) };
  for (const query of queries(world)) {
    const first = await cached.gql(query, {}, at);
    const second = await cached.gql(query, {}, at);
    const reference = await uncached.gql(query, {}, at);
    expect(reference.errors).toBeUndefined();
    expect(reference.extensions?.dbaas?.cached).toBe(false);
    for (const answer of [first, second]) {
      expect({ query, data: answer.data }).toEqual({ query, data: reference.data });
      if (answer.extensions?.dbaas?.cached) world.hits++;
    }
    world.compared++;
  }
}

type Command =
  | { kind: 'createRide'; user: number; route: number; other: boolean }
  | { kind: 'joinRide'; ride: number; user: number; other: boolean }
  | { kind: 'deleteRide'; ride: number; other: boolean }
  | { kind: 'createUser'; other: boolean }
  | { kind: 'deleteUser'; user: number; other: boolean }
  | { kind: 'clearDatabase'; other: boolean };

const index = fc.nat({ max: 50 });
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('createRide' as const), user: index, route: fc.nat({ max: ROUTES.length - 1 }), other: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('joinRide' as const), ride: index, user: index, other: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('deleteRide' as const), ride: index, other: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('createUser' as const), other: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteUser' as const), user: index, other: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clearDatabase' as const), other: fc.boolean() }) },
);

let names = 0;
/** Runs one write through either gateway; the world learns its seq (failed writes change nothing). */
async function run(world: World, c: Command): Promise<void> {
  const gateway = c.other ? uncached : cached;
  const pick = <T>(xs: T[], i: number) => (xs.length ? xs[i % xs.length] : undefined);
  let res;
  switch (c.kind) {
    case 'createRide': {
      const user = pick(world.users, c.user);
      if (!user) return;
      const [s, d] = ROUTES[c.route];
      res = await gateway.gql<{ createRide: { id: number } }>(
        `mutation($ts: DateTimeISO!) { createRide(createdBy: "${user}", timestamp: $ts, source: ${s}, destination: ${d}) { id } }`,
        { ts: future(world.rides.length) },
      );
      if (res.data?.createRide) world.rides.push(res.data.createRide.id);
      break;
    }
    case 'joinRide': {
      const [ride, user] = [pick(world.rides, c.ride), pick(world.users, c.user)];
      if (ride === undefined || !user) return;
      res = await gateway.gql(`mutation { joinRide(rideId: ${ride}, username: "${user}") { id } }`);
      break;
    }
    case 'deleteRide': {
      const ride = pick(world.rides, c.ride);
      if (ride === undefined) return;
      res = await gateway.gql(`mutation { deleteRide(rideId: ${ride}) }`);
      world.rides = world.rides.filter((r) => r !== ride);
      break;
    }
    case 'createUser': {
      const user = `rc${names++}`;
      res = await gateway.gql(`mutation($p: String!) { createUser(username: "${user}", password: $p) { username } }`, { p: PASSWORD });
      if (!res.errors) world.users.push(user);
      break;
    }
    case 'deleteUser': {
      const user = pick(world.users, c.user);
      if (!user) return;
      res = await gateway.gql(`mutation { deleteUser(username: "${user}") }`);
      world.users = world.users.filter((u) => u !== user);
      break;
    }
    case 'clearDatabase':
      res = await gateway.admin('mutation { clearDatabase }');
      world.users = [];
      world.rides = [];
      break;
  }
  const seq = res.extensions?.dbaas?.seq;
  if (typeof seq === 'number') world.seq = Math.max(world.seq, seq);
}

async function seedWorld(): Promise<World> {
  const world: World = { users: [], rides: [], seq: 0, hits: 0, compared: 0 };
  for (let i = 0; i < 4; i++) await run(world, { kind: 'createUser', other: false });
  for (let i = 0; i < 6; i++) await run(world, { kind: 'createRide', user: i, route: i % ROUTES.length, other: false });
  return world;
}

async function metric(gateway: TestCluster, name: string): Promise<number> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('the read cache', () => {
  it('never answers differently from a replica, whatever the writes (random sequences, through either gateway)', async () => {
    const totals = { hits: 0, compared: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 8, maxLength: 16 }), async (commands) => {
        const world = await seedWorld();
        await compareAll(world);
        for (const c of commands) {
          await run(world, c);
          await compareAll(world);
        }
        totals.hits += world.hits;
        totals.compared += world.compared;
      }),
      { numRuns: 4 },
    );
    // Not vacuous: most second asks were answered by the cache, and writes dropped answers.
    expect(totals.hits).toBeGreaterThan(totals.compared / 2);
    expect(await metric(cached, 'ridedb_read_cache_lookups_total{outcome="hit"}')).toBeGreaterThan(0);
    expect(await metric(cached, 'ridedb_read_cache_invalidations_total')).toBeGreaterThan(0);
    expect(await metric(uncached, 'ridedb_read_cache_lookups_total{outcome="hit"}')).toBe(0);
  });

  it("reads its own writes: a query answered from the cache reflects the gateway's write at once", async () => {
    const world = await seedWorld();
    const query = '{ rides(source: 3, destination: 4) { id riders { username } } }';
    await cached.data(query);
    expect((await cached.gql(query)).extensions?.dbaas?.cached).toBe(true);
    for (let i = 0; i < 10; i++) {
      const { createRide } = await cached.data<{ createRide: { id: number } }>(
        `mutation($ts: DateTimeISO!) { createRide(createdBy: "${world.users[0]}", timestamp: $ts, source: 3, destination: 4) { id } }`,
        { ts: future(500 + i) },
      );
      const { rides } = await cached.data<{ rides: Array<{ id: number }> }>(query);
      expect(rides.map((r) => r.id)).toContain(createRide.id);
    }
  });

  it('drops exactly what a deleted user touched: the rides it joined, as their other riders see them, and nothing else', async () => {
    const [ann, bob, cy, dee] = ['dx_ann', 'dx_bob', 'dx_cy', 'dx_dee'];
    for (const u of [ann, bob, cy, dee]) await cached.data(`mutation($p: String!) { createUser(username: "${u}", password: $p) { username } }`, { p: PASSWORD });
    const { createRide } = await cached.data<{ createRide: { id: number } }>(
      `mutation($ts: DateTimeISO!) { createRide(createdBy: "${ann}", timestamp: $ts, source: 5, destination: 6) { id } }`,
      { ts: future(700) },
    );
    await cached.data(`mutation($ts: DateTimeISO!) { createRide(createdBy: "${dee}", timestamp: $ts, source: 7, destination: 8) { id } }`, { ts: future(701) });
    for (const u of [bob, cy]) await cached.data(`mutation { joinRide(rideId: ${createRide.id}, username: "${u}") { id } }`);
    const coRider = `{ user(username: "${bob}") { ridesJoined { id riders { username } } } }`;
    const untouched = '{ rides(source: 7, destination: 8) { id createdBy { username } riders { username } } }';
    for (const q of [coRider, untouched]) {
      await cached.data(q);
      expect((await cached.gql(q)).extensions?.dbaas?.cached).toBe(true);
    }
    // Through the other gateway: this one learns of it from the log alone.
    const { extensions } = await uncached.gql('mutation { deleteUser(username: "dx_cy") }');
    const at = { 'x-dbaas-min-seq': String(extensions?.dbaas?.seq) };
    const seen = await cached.gql<{ user: { ridesJoined: Array<{ riders: Array<{ username: string }> }> } }>(coRider, {}, at);
    expect(seen.data?.user.ridesJoined[0].riders.map((r) => r.username)).toEqual([bob]);
    expect(seen.data).toEqual((await uncached.gql(coRider, {}, at)).data);
    expect((await cached.gql(untouched, {}, at)).extensions?.dbaas?.cached).toBe(true);
  });

  it('empties itself, and ends every live subscription, for a deleted user past MAX_LOGGED_RIDES', async () => {
    const [fleet, other] = ['dx_fleet', 'dx_other'];
    for (const u of [fleet, other]) await cached.data(`mutation($p: String!) { createUser(username: "${u}", password: $p) { username } }`, { p: PASSWORD });
    const made = await cached.gql(`mutation($ts: DateTimeISO!) { createRide(createdBy: "${other}", timestamp: $ts, source: 13, destination: 14) { id } }`, { ts: future(900) });
    expect(made.errors).toBeUndefined();
    const untouched = '{ rides(source: 13, destination: 14) { id createdBy { username } } }';
    await cached.data(untouched);
    expect((await cached.gql(untouched)).extensions?.dbaas?.cached).toBe(true);
    // A live subscription to a route the user never rode.
    const ended: Array<string | undefined> = [];
    const snapshots: unknown[] = [];
    const client = createClient({ url: cached.url.replace(/^http/, 'ws') + '/graphql', webSocketImpl: WebSocket, retryAttempts: 0 });
    client.subscribe(
      { query: 'subscription { rides(source: 13, destination: 14) { type seq } }' },
      {
        next: (msg) => {
          if (msg.data) snapshots.push(msg.data);
          for (const e of msg.errors ?? []) ended.push(e.extensions?.code as string | undefined);
        },
        error: (err) => ended.push(String(err)),
        complete: () => undefined,
      },
    );
    await waitUntil('the snapshot', async () => snapshots.length > 0, 30_000);
    // More rides than one log entry lists, put into every replica alike with SQL (ids far
    // above any seq here): through the write path they would take minutes.
    for (const w of await cached.workers()) {
      // After the user is there (the rides' foreign key), on every replica.
      const seq = Number(made.extensions?.dbaas?.seq);
      await waitUntil(`${w.id} at seq ${seq}`, async () => (await appliedSeqOf(cached.workerDatabaseUrl(w.id))) >= seq, 30_000);
      const db = new Client({ connectionString: cached.workerDatabaseUrl(w.id) });
      await db.connect();
      try {
        await db.query(
          `INSERT INTO rides (id, created_by, ts, source, destination)
           SELECT 900000000 + g, $1, now() + interval '1 day' + g * interval '1 second', 11, 12 FROM generate_series(1, $2::int) g`,
          [fleet, MAX_LOGGED_RIDES + 1],
        );
      } finally {
        await db.end();
      }
    }
    const { extensions } = await uncached.gql(`mutation { deleteUser(username: "${fleet}") }`);
    const at = { 'x-dbaas-min-seq': String(extensions?.dbaas?.seq) };
    // The entry cannot list the rides: the cache drops everything, the feed ends everyone.
    const after = await cached.gql(untouched, {}, at);
    expect(after.extensions?.dbaas?.cached).toBe(false);
    expect(after.data).toEqual((await uncached.gql(untouched, {}, at)).data);
    await waitUntil('the subscription ended', async () => ended.length > 0, 30_000);
    expect(ended).toEqual(['SNAPSHOT_REQUIRED']);
    await client.dispose();
    for (const gateway of [cached, uncached]) expect(await gateway.data('{ rides(source: 11, destination: 12) { id } }')).toEqual({ rides: [] });
  });

  it('drops an upcoming route page when its first ride leaves, by time alone', async () => {
    const world = await seedWorld();
    // Far enough ahead for the writes and reads below on a busy machine.
    const soon = new Date(Date.now() + 6000).toISOString();
    const made = await cached.data<{ createRide: { id: number } }>(
      `mutation($ts: DateTimeISO!) { createRide(createdBy: "${world.users[0]}", timestamp: $ts, source: 9, destination: 10) { id } }`,
      { ts: soon },
    );
    const query = '{ rides(source: 9, destination: 10) { id } }';
    await cached.data(query);
    const hit = await cached.gql<{ rides: Array<{ id: number }> }>(query);
    expect(hit.extensions?.dbaas?.cached).toBe(true);
    expect(hit.data?.rides.map((r) => r.id)).toContain(made.createRide.id);
    await sleep(Date.parse(soon) - Date.now() + 100);
    const later = await cached.gql<{ rides: Array<{ id: number }> }>(query);
    expect(later.data?.rides.map((r) => r.id)).not.toContain(made.createRide.id);
  });

  it('answers as a replica does across a failover', async () => {
    const world = await seedWorld();
    await compareAll(world);
    const oldMaster = await cached.master();
    process.kill(oldMaster.pid, 'SIGKILL');
    await waitUntil('a new master', async () => {
      const m = (await cached.workers()).find((w) => w.role === 'MASTER');
      return m && m.id !== oldMaster.id ? m : undefined;
    });
    await compareAll(world);
    for (const c of [
      { kind: 'createRide', user: 1, route: 0, other: false },
      { kind: 'joinRide', ride: 0, user: 2, other: true },
      { kind: 'deleteRide', ride: 1, other: false },
    ] satisfies Command[]) {
      await run(world, c);
      await compareAll(world);
    }
  });
});
