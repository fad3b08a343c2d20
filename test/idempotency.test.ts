import { randomUUID } from 'node:crypto';
import { PASSWORD, TestCluster, waitUntil } from './support/cluster';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start();
  await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'asha', p: PASSWORD });
  await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'ravi', p: PASSWORD });
});
afterAll(async () => {
  await cluster?.stop();
});

const CREATE_RIDE = 'mutation Create($s: Int!, $d: Int!, $ts: DateTimeISO!) { createRide(createdBy: "asha", timestamp: $ts, source: $s, destination: $d) { id } }';
const TS = '2031-01-01T08:00:00.000Z';
type Created = { createRide: { id: number } };

const rideCount = async () => (await cluster.data<{ rideCount: number }>('{ rideCount }')).rideCount;
const createWithKey = (key: string, s = 2, d = 4) => cluster.gql<Created>(CREATE_RIDE, { s, d, ts: TS }, { 'idempotency-key': key });

describe('Idempotency-Key', () => {
  it('makes a retried mutation return the original result and change nothing', async () => {
    const key = randomUUID();
    const first = await createWithKey(key);
    expect(first.errors).toBeUndefined();
    const count = await rideCount();
    const again = await createWithKey(key);
    expect(again.errors).toBeUndefined();
    expect(again.data).toEqual(first.data);
    expect(again.extensions?.dbaas?.seq).toBe(first.extensions?.dbaas?.seq);
    expect(await rideCount()).toBe(count);
    // The key may be sent as a structured-field string, in quotes.
    expect((await createWithKey(`"${key}"`)).data).toEqual(first.data);
  });

  it('answers CONFLICT when a key is reused with other arguments or another operation', async () => {
    const key = randomUUID();
    const first = await createWithKey(key, 2, 4);
    expect(first.errors).toBeUndefined();
    const count = await rideCount();
    const other = await createWithKey(key, 2, 5);
    expect(other.errors?.[0].extensions?.code).toBe('CONFLICT');
    const otherOp = await cluster.gql('mutation { joinRide(rideId: 1, username: "ravi") { id } }', {}, { 'idempotency-key': key });
    expect(otherOp.errors?.[0].extensions?.code).toBe('CONFLICT');
    expect(await rideCount()).toBe(count);
  });

  it('applies concurrent tries of one key once', async () => {
    const key = randomUUID();
    const count = await rideCount();
    const answers = await Promise.all(Array.from({ length: 8 }, () => createWithKey(key, 3, 4)));
    for (const a of answers) expect(a.errors).toBeUndefined();
    expect(new Set(answers.map((a) => a.data?.createRide.id)).size).toBe(1);
    expect(await rideCount()).toBe(count + 1);
  });

  it('gives each mutation of a keyed document its own identity', async () => {
    const key = randomUUID();
    const doc = `mutation Two { a: createRide(createdBy: "asha", timestamp: "${TS}", source: 5, destination: 6) { id }
      b: createRide(createdBy: "asha", timestamp: "${TS}", source: 5, destination: 6) { id } }`;
    const first = await cluster.gql<{ a: { id: number }; b: { id: number } }>(doc, {}, { 'idempotency-key': key });
    expect(first.errors).toBeUndefined();
    expect(first.data!.a.id).not.toBe(first.data!.b.id);
    expect((await cluster.gql(doc, {}, { 'idempotency-key': key })).data).toEqual(first.data);
  });

  it('holds for the REST API too', async () => {
    const key = randomUUID();
    const post = () =>
      fetch(`${cluster.url}/api/v1/rides`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ created_by: 'ravi', timestamp: '01-05-2031:00-30-08', source: 7, destination: 8 }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as unknown }));
    const first = await post();
    expect(first.status).toBe(201);
    const count = await rideCount();
    expect(await post()).toEqual(first);
    expect(await rideCount()).toBe(count);
  });

  it('rejects a malformed key with BAD_USER_INPUT before doing anything', async () => {
    for (const bad of ['', 'has space', 'x'.repeat(129), 'quote"inside']) {
      const res = await createWithKey(bad);
      expect(res.status).toBe(400);
      expect(res.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    }
    const rest = await fetch(`${cluster.url}/api/v1/rides`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'a b' }, body: '{}' });
    expect(rest.status).toBe(400);
  });

  it('survives a master failover and a gateway restart', async () => {
    const key = randomUUID();
    const first = await createWithKey(key, 9, 10);
    expect(first.errors).toBeUndefined();
    const count = await rideCount();

    const oldMaster = await cluster.master();
    await cluster.admin('mutation { crashMaster { id } }');
    await waitUntil('a new master', async () => {
      const m = (await cluster.workers()).find((w) => w.role === 'MASTER');
      return m && m.id !== oldMaster.id;
    });
    const afterFailover = await waitUntil('the retry answered', async () => {
      const r = await createWithKey(key, 9, 10);
      return r.errors ? undefined : r;
    });
    expect(afterFailover.data).toEqual(first.data);
    expect((await createWithKey(key, 9, 11)).errors?.[0].extensions?.code).toBe('CONFLICT');

    await cluster.crashAndRestartGateway();
    const afterRestart = await createWithKey(key, 9, 10);
    expect(afterRestart.data).toEqual(first.data);
    expect(await rideCount()).toBe(count);
  });
});
