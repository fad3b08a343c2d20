import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { PASSWORD, TestCluster, waitUntil } from './support/cluster';

// Live rides from the log (issue 15): a route's changes, in seq order, exactly once,
// resumable with afterSeq across disconnects, a master crash and a gateway restart.
let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start({ LIVE_BUFFER_CHANGES: '20', LIVE_HISTORY_CHANGES: '1000', MUTATIONS_PER_MINUTE_PER_IP: '0' });
  await cluster.data(
    'mutation { a: createUser(username: "driver", password: $p) { username } b: createUser(username: "rider", password: $p) { username } }'.replace(
      /\$p/g,
      JSON.stringify(PASSWORD),
    ),
  );
});
afterAll(async () => {
  await cluster?.stop();
});

interface Change {
  type: string;
  seq: number;
  at: string;
  rideId: number | null;
  ride: { id: number; timestamp: string; createdBy: { username: string }; riders: Array<{ username: string }> } | null;
  rider: { username: string } | null;
  rides: Array<{ id: number }> | null;
}
const SELECTION = 'type seq at rideId ride { id timestamp createdBy { username } riders { username } } rider { username } rides { id }';

/** A subscription to a route's rides that records what arrives. */
class Watcher {
  readonly changes: Change[] = [];
  readonly errors: Array<{ message: string; extensions?: { code?: string } }> = [];
  completed = false;
  private readonly client: Client;

  /** A route's rides, or with `field` another live field and its argument list (`id: 5`). */
  constructor(url: string, source: number, destination: number, afterSeq?: number, field?: { name: string; args: string }) {
    this.client = createClient({ url: url.replace(/^http/, 'ws') + '/graphql', webSocketImpl: WebSocket, retryAttempts: 0 });
    const name = field?.name ?? 'rides';
    this.client.subscribe<Record<string, Change>>(
      field
        ? { query: `subscription { ${field.name}(${field.args}) { ${SELECTION} } }` }
        : {
            query: `subscription($s: Int!, $d: Int!, $after: Int) { rides(source: $s, destination: $d, afterSeq: $after) { ${SELECTION} } }`,
            variables: { s: source, d: destination, after: afterSeq ?? null },
          },
      {
        next: (msg) => {
          if (msg.errors) this.errors.push(...(msg.errors as Watcher['errors']));
          if (msg.data?.[name]) this.changes.push(msg.data[name]);
        },
        error: (err) => this.errors.push({ message: String(err instanceof Error ? err.message : JSON.stringify(err)) }),
        complete: () => (this.completed = true),
      },
    );
  }

  get lastSeq(): number {
    return this.changes[this.changes.length - 1].seq;
  }

  async until(n: number): Promise<Change[]> {
    return waitUntil(`${n} changes (have ${this.changes.length})`, async () => (this.changes.length >= n ? this.changes : undefined), 30_000);
  }

  async close(): Promise<void> {
    await this.client.dispose();
  }
}

const createRide = async (source: number, destination: number, day: number) => {
  const res = await cluster.gql<{ createRide: { id: number } }>(
    `mutation { createRide(createdBy: "driver", timestamp: "2040-01-${String(day).padStart(2, '0')}T00:00:00Z", source: ${source}, destination: ${destination}) { id } }`,
  );
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return { id: res.data!.createRide.id, seq: Number(res.headers.get('x-dbaas-seq')) };
};

describe('live rides', () => {
  it("sends the route's snapshot, then exactly its changes in seq order, with the fields selected", async () => {
    const before = await createRide(21, 22, 1);
    const w = new Watcher(cluster.url, 21, 22);
    const [snapshot] = await w.until(1);
    expect(snapshot).toMatchObject({ type: 'SNAPSHOT', rideId: null, ride: null, rides: [{ id: before.id }] });
    expect(snapshot.seq).toBeGreaterThanOrEqual(before.seq);

    const a = await createRide(21, 22, 2);
    await createRide(23, 24, 2); // another route
    const b = await createRide(21, 22, 3);
    const join = await cluster.gql('mutation { joinRide(rideId: ' + a.id + ', username: "rider") { id } }');
    const del = await cluster.gql('mutation { deleteRide(rideId: ' + b.id + ') }');
    const changes = (await w.until(5)).slice(1);
    await new Promise((r) => setTimeout(r, 300)); // nothing else arrives
    expect(w.changes).toHaveLength(5);
    expect(changes.map((c) => [c.type, c.rideId])).toEqual([
      ['RIDE_CREATED', a.id],
      ['RIDE_CREATED', b.id],
      ['RIDE_JOINED', a.id],
      ['RIDE_DELETED', b.id],
    ]);
    expect(changes.map((c) => c.seq)).toEqual([a.seq, b.seq, Number(join.headers.get('x-dbaas-seq')), Number(del.headers.get('x-dbaas-seq'))]);
    expect(changes[0].ride).toEqual({ id: a.id, timestamp: '2040-01-02T00:00:00.000Z', createdBy: { username: 'driver' }, riders: [] });
    expect(changes[2]).toMatchObject({ rider: { username: 'rider' }, ride: { riders: [{ username: 'rider' }] } });
    expect(changes[3].ride).toBeNull();
    for (const c of changes) expect(new Date(c.at).toISOString()).toBe(c.at);
    const metrics = await (await fetch(`${cluster.url}/metrics`)).text();
    expect(Number(/^ridedb_live_head_seq (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(changes[3].seq);
    await w.close();
  });

  it('resumes with afterSeq: exactly the changes missed while away, then live ones', async () => {
    const w = new Watcher(cluster.url, 25, 26);
    await w.until(1);
    const first = await createRide(25, 26, 1);
    await w.until(2);
    await w.close();
    const missed: number[] = [];
    for (let i = 0; i < 100; i++) missed.push((await createRide(25, 26, 1 + (i % 28))).seq);
    const again = new Watcher(cluster.url, 25, 26, first.seq);
    await again.until(100);
    const live = await createRide(25, 26, 5);
    await again.until(101);
    expect(again.changes.map((c) => c.seq)).toEqual([...missed, live.seq]);
    expect(again.changes.every((c) => c.type === 'RIDE_CREATED')).toBe(true);
    await again.close();
  });

  it('resumes across a master crash and a gateway restart without a gap or a repeat', async () => {
    const w = new Watcher(cluster.url, 27, 28);
    await w.until(1);
    const seqs = [(await createRide(27, 28, 1)).seq];
    await w.until(2);
    await cluster.admin('mutation { crashMaster { id } }');
    for (let i = 0; i < 5; i++) seqs.push((await waitUntil('a write after the crash', async () => createRide(27, 28, 2 + i).catch(() => undefined))).seq);
    await w.until(7);
    const seen = w.lastSeq;
    await w.close();
    await cluster.crashAndRestartGateway();
    for (let i = 0; i < 5; i++) seqs.push((await createRide(27, 28, 10 + i)).seq);
    const again = new Watcher(cluster.url, 27, 28, seen);
    await again.until(5);
    expect([...w.changes.slice(1), ...again.changes].map((c) => c.seq)).toEqual(seqs);
    await again.close();
  });

  it('ends a subscriber that stops reading with SLOW_CONSUMER while a fast one on the same gateway keeps receiving', async () => {
    // A raw socket that subscribes with a large selection, then stops reading.
    const slowSocket = new WebSocket(cluster.url.replace(/^http/, 'ws') + '/graphql', 'graphql-transport-ws');
    const received: string[] = [];
    slowSocket.on('message', (d: Buffer) => received.push(d.toString()));
    await new Promise((r) => slowSocket.once('open', r));
    slowSocket.send(JSON.stringify({ type: 'connection_init' }));
    await waitUntil('ack', async () => received.some((m) => m.includes('connection_ack')));
    const big = Array.from(
      { length: 25 },
      (_, i) => `r${i}: ride { id timestamp createdBy { username createdAt } source { id name } destination { id name } riders { username createdAt } }`,
    ).join(' ');
    slowSocket.send(JSON.stringify({ id: 'slow', type: 'subscribe', payload: { query: `subscription { rides(source: 29, destination: 30, afterSeq: 0) { seq ${big} } }` } }));
    const fast = new Watcher(cluster.url, 29, 30);
    await fast.until(1);
    (slowSocket as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();

    const writes = 1500;
    let done = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (done < writes) {
          done++;
          await createRide(29, 30, 1 + (done % 28));
        }
      }),
    );
    await fast.until(1 + writes);
    expect(new Set(fast.changes.slice(1).map((c) => c.seq)).size).toBe(writes);

    (slowSocket as unknown as { _socket: { resume(): void } })._socket.resume();
    const ending = await waitUntil('the slow subscription ended', async () => received.find((m) => m.includes('SLOW_CONSUMER')), 30_000);
    expect(ending).toMatch(/afterSeq: \d+/);
    slowSocket.close();
    await fast.close();
  });

  it("follows one ride (ride) and one user's rides (userRides): snapshot, then their changes only", async () => {
    await cluster.data(`mutation { createUser(username: "fan", password: ${JSON.stringify(PASSWORD)}) { username } }`);
    const mine = await createRide(33, 34, 1);
    const other = await createRide(33, 34, 2);
    const oneRide = new Watcher(cluster.url, 0, 0, undefined, { name: 'ride', args: `id: ${mine.id}` });
    const fan = new Watcher(cluster.url, 0, 0, undefined, { name: 'userRides', args: 'username: "fan"' });
    expect((await oneRide.until(1))[0]).toMatchObject({ type: 'SNAPSHOT', rides: [{ id: mine.id }] });
    expect((await fan.until(1))[0]).toMatchObject({ type: 'SNAPSHOT', rides: [] });
    const joined = await cluster.gql(`mutation { joinRide(rideId: ${mine.id}, username: "fan") { id } }`);
    await cluster.gql(`mutation { joinRide(rideId: ${other.id}, username: "rider") { id } }`); // neither's
    const deleted = await cluster.gql(`mutation { deleteRide(rideId: ${mine.id}) }`);
    const seqs = [Number(joined.headers.get('x-dbaas-seq')), Number(deleted.headers.get('x-dbaas-seq'))];
    for (const w of [oneRide, fan]) {
      const changes = (await w.until(3)).slice(1);
      await new Promise((r) => setTimeout(r, 200)); // nothing else arrives
      expect(w.changes).toHaveLength(3);
      expect(changes.map((c) => [c.type, c.rideId, c.seq])).toEqual([
        ['RIDE_JOINED', mine.id, seqs[0]],
        ['RIDE_DELETED', mine.id, seqs[1]],
      ]);
      await w.close();
    }
  });

  it('tells a creator who joins their own ride once, live and on a resume', async () => {
    await cluster.data(`mutation { createUser(username: "selfie", password: ${JSON.stringify(PASSWORD)}) { username } }`);
    const created = await cluster.gql<{ createRide: { id: number } }>(
      'mutation { createRide(createdBy: "selfie", timestamp: "2040-02-01T00:00:00Z", source: 35, destination: 36) { id } }',
    );
    const rideId = created.data!.createRide.id;
    const live = new Watcher(cluster.url, 0, 0, undefined, { name: 'userRides', args: 'username: "selfie"' });
    expect((await live.until(1))[0]).toMatchObject({ type: 'SNAPSHOT', rides: [{ id: rideId }] });
    const joined = await cluster.gql(`mutation { joinRide(rideId: ${rideId}, username: "selfie") { id } }`);
    const deleted = await cluster.gql(`mutation { deleteRide(rideId: ${rideId}) }`);
    const expected = [
      ['RIDE_JOINED', rideId, Number(joined.headers.get('x-dbaas-seq'))],
      ['RIDE_DELETED', rideId, Number(deleted.headers.get('x-dbaas-seq'))],
    ];
    await live.until(3);
    const resumed = new Watcher(cluster.url, 0, 0, undefined, { name: 'userRides', args: `username: "selfie", afterSeq: ${Number(created.headers.get('x-dbaas-seq'))}` });
    await resumed.until(2);
    await new Promise((r) => setTimeout(r, 200)); // nothing else arrives
    expect(live.changes.slice(1).map((c) => [c.type, c.rideId, c.seq])).toEqual(expected);
    expect(resumed.changes.map((c) => [c.type, c.rideId, c.seq])).toEqual(expected);
    await live.close();
    await resumed.close();
  });

  it("tells a rider when the creator's deletion takes a ride they joined, and not of rides they did not", async () => {
    for (const username of ['leaver', 'hitcher']) await cluster.data(`mutation { createUser(username: "${username}", password: ${JSON.stringify(PASSWORD)}) { username } }`);
    const ride = async (day: number) => {
      const res = await cluster.gql<{ createRide: { id: number } }>(
        `mutation { createRide(createdBy: "leaver", timestamp: "2040-03-0${day}T00:00:00Z", source: 37, destination: 38) { id } }`,
      );
      return res.data!.createRide.id;
    };
    const joined = await ride(1);
    await ride(2); // not hitcher's
    await cluster.gql(`mutation { joinRide(rideId: ${joined}, username: "hitcher") { id } }`);
    const hitcher = new Watcher(cluster.url, 0, 0, undefined, { name: 'userRides', args: 'username: "hitcher"' });
    expect((await hitcher.until(1))[0]).toMatchObject({ type: 'SNAPSHOT', rides: [{ id: joined }] });
    const deleted = await cluster.gql('mutation { deleteUser(username: "leaver") }');
    await hitcher.until(2);
    await new Promise((r) => setTimeout(r, 200)); // nothing else arrives
    expect(hitcher.changes.slice(1).map((c) => [c.type, c.rideId, c.seq])).toEqual([['RIDE_DELETED', joined, Number(deleted.headers.get('x-dbaas-seq'))]]);
    await hitcher.close();
  });

  it("tells a ride's route, the ride, its creator and all its riders when a rider joins it (RIDE_JOINED) and when a deleted rider leaves it (RIDE_LEFT)", async () => {
    for (const username of ['host', 'quitter']) await cluster.data(`mutation { createUser(username: "${username}", password: ${JSON.stringify(PASSWORD)}) { username } }`);
    const created = await cluster.gql<{ createRide: { id: number } }>(
      'mutation { createRide(createdBy: "host", timestamp: "2040-05-01T00:00:00Z", source: 43, destination: 44) { id } }',
    );
    const rideId = created.data!.createRide.id;
    await cluster.gql(`mutation { joinRide(rideId: ${rideId}, username: "rider") { id } }`);
    const watchers = [
      new Watcher(cluster.url, 43, 44),
      new Watcher(cluster.url, 0, 0, undefined, { name: 'ride', args: `id: ${rideId}` }),
      new Watcher(cluster.url, 0, 0, undefined, { name: 'userRides', args: 'username: "host"' }),
      new Watcher(cluster.url, 0, 0, undefined, { name: 'userRides', args: 'username: "quitter"' }),
      // A rider of the ride already: its joined rides list the ride and its riders.
      new Watcher(cluster.url, 0, 0, undefined, { name: 'userRides', args: 'username: "rider"' }),
    ];
    for (const w of watchers) await w.until(1);
    const joined = await cluster.gql(`mutation { joinRide(rideId: ${rideId}, username: "quitter") { id } }`);
    const joinSeq = Number(joined.headers.get('x-dbaas-seq'));
    for (const w of watchers) {
      const [change] = (await w.until(2)).slice(1);
      expect(change).toMatchObject({ type: 'RIDE_JOINED', seq: joinSeq, rideId, rider: { username: 'quitter' } });
    }
    const deleted = await cluster.gql('mutation { deleteUser(username: "quitter") }');
    const seq = Number(deleted.headers.get('x-dbaas-seq'));
    for (const w of watchers) {
      const [change] = (await w.until(3)).slice(2);
      expect(change).toMatchObject({ type: 'RIDE_LEFT', seq, rideId, ride: null, rider: { username: 'quitter' } });
    }
    await new Promise((r) => setTimeout(r, 200)); // nothing else arrives
    for (const w of watchers) expect(w.changes).toHaveLength(3);
    // What a client holding the riders makes of it is what a read says now.
    const now = await cluster.data<{ ride: { riders: Array<{ username: string }> } }>(`{ ride(id: ${rideId}) { riders { username } } }`);
    expect(now.ride.riders).toEqual([{ username: 'rider' }]);
    for (const w of watchers) await w.close();
  });

  it("resumes among one deleteUser's changes after the ride given (afterRideId), each change once", async () => {
    await cluster.data(`mutation { createUser(username: "mover", password: ${JSON.stringify(PASSWORD)}) { username } }`);
    const rideIds: number[] = [];
    for (const day of [1, 2, 3]) {
      const res = await cluster.gql<{ createRide: { id: number } }>(
        `mutation { createRide(createdBy: "mover", timestamp: "2040-04-0${day}T00:00:00Z", source: 39, destination: 40) { id } }`,
      );
      rideIds.push(res.data!.createRide.id);
    }
    const live = new Watcher(cluster.url, 39, 40);
    await live.until(1);
    const deleted = await cluster.gql('mutation { deleteUser(username: "mover") }');
    const seq = Number(deleted.headers.get('x-dbaas-seq'));
    const all = (await live.until(4)).slice(1).map((c) => [c.type, c.rideId, c.seq]);
    expect(all).toEqual(rideIds.map((id) => ['RIDE_DELETED', id, seq]));
    // A client that had only the first of them resumes after it: the other two, nothing else.
    const resumed = new Watcher(cluster.url, 0, 0, undefined, { name: 'rides', args: `source: 39, destination: 40, afterSeq: ${seq}, afterRideId: ${rideIds[0]}` });
    await resumed.until(2);
    await new Promise((r) => setTimeout(r, 200)); // nothing else arrives
    expect(resumed.changes.map((c) => [c.type, c.rideId, c.seq])).toEqual(all.slice(1));
    const noSeq = new Watcher(cluster.url, 0, 0, undefined, { name: 'rides', args: `source: 39, destination: 40, afterRideId: ${rideIds[0]}` });
    await waitUntil('an error', async () => noSeq.errors.length > 0 || undefined, 30_000);
    expect(noSeq.errors[0]).toMatchObject({ message: expect.stringContaining('afterRideId needs afterSeq'), extensions: { code: 'BAD_USER_INPUT' } });
    for (const w of [live, resumed, noSeq]) await w.close();
  });

  it('says SNAPSHOT_REQUIRED for an afterSeq older than the changes it keeps, and BAD_USER_INPUT for an unknown area', async () => {
    const old = new Watcher(cluster.url, 21, 22, 0);
    await waitUntil('an error', async () => old.errors.length > 0 || undefined, 30_000);
    expect(old.errors[0].extensions?.code).toBe('SNAPSHOT_REQUIRED');
    await old.close();
    const unknown = new Watcher(cluster.url, 21, 999);
    await waitUntil('an error', async () => unknown.errors.length > 0 || undefined, 30_000);
    expect(unknown.errors[0].extensions?.code).toBe('BAD_USER_INPUT');
    await unknown.close();
  });

  it("reads a creator's rides anew for each change, not once for the subscription", async () => {
    await cluster.data(`mutation { createUser(username: "memo", password: ${JSON.stringify(PASSWORD)}) { username } }`);
    const client = createClient({ url: cluster.url.replace(/^http/, 'ws') + '/graphql', webSocketImpl: WebSocket, retryAttempts: 0 });
    const seen: number[][] = [];
    const errors: unknown[] = [];
    let snapshot = false;
    client.subscribe<{ rides: { type: string; ride: { createdBy: { ridesCreated: Array<{ id: number }> } } | null } }>(
      { query: 'subscription { rides(source: 21, destination: 22) { type ride { createdBy { ridesCreated(first: 100) { id } } } } }' },
      {
        next: (msg) => {
          if (msg.data?.rides.type === 'SNAPSHOT') snapshot = true;
          if (msg.data?.rides.type === 'RIDE_CREATED') seen.push(msg.data.rides.ride!.createdBy.ridesCreated.map((r) => r.id));
        },
        error: (err) => errors.push(err),
        complete: () => undefined,
      },
    );
    const create = async (ts: string) =>
      (await cluster.data<{ createRide: { id: number } }>(`mutation { createRide(createdBy: "memo", timestamp: "${ts}", source: 21, destination: 22) { id } }`)).createRide.id;
    await waitUntil('the snapshot', async () => snapshot, 30_000);
    const first = await create('2037-01-01T00:00:00Z');
    await waitUntil('the first change', async () => seen.length === 1, 30_000);
    const second = await create('2037-01-02T00:00:00Z');
    await waitUntil('the second change', async () => seen.length === 2, 30_000);
    expect(seen[0]).toEqual([first]);
    expect(seen[1]).toEqual([first, second]);
    expect(errors).toEqual([]);
    await client.dispose();
  });
});
