import { randomUUID } from 'node:crypto';
import { PASSWORD, queryOne, sleep, TestCluster, waitUntil } from './support/cluster';

// A short window, so the test can outlive it: the workers trim every quarter window.
const WINDOW_S = 4;

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start({ IDEMPOTENCY_WINDOW_SECONDS: String(WINDOW_S) });
  await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'asha', p: PASSWORD });
});
afterAll(async () => {
  await cluster?.stop();
});

const CREATE = 'mutation { createRide(createdBy: "asha", timestamp: "2031-06-01T08:00:00Z", source: 3, destination: 5) { id } }';
type Created = { createRide: { id: number } };
const logRows = async (workerId: string) => Number((await queryOne<{ n: string }>(cluster.workerDatabaseUrl(workerId), 'SELECT count(*) AS n FROM _dbaas_log')).n);

describe('the idempotency window', () => {
  it('returns the original result to a retry within the window, and forgets request ids older than it on every replica', async () => {
    const key = randomUUID();
    const first = await cluster.gql<Created>(CREATE, {}, { 'idempotency-key': key });
    expect(first.errors).toBeUndefined();
    await sleep(1000);
    expect((await cluster.gql<Created>(CREATE, {}, { 'idempotency-key': key })).data).toEqual(first.data);

    // Past the window, every worker has trimmed its log table...
    const workers = await cluster.workers();
    await waitUntil('old request ids trimmed on every worker', async () => (await Promise.all(workers.map((w) => logRows(w.id)))).every((n) => n === 0), 4 * WINDOW_S * 1000);
    // ...so the same key is a new write: this is the documented end of the guarantee.
    const late = await cluster.gql<Created>(CREATE, {}, { 'idempotency-key': key });
    expect(late.errors).toBeUndefined();
    expect(late.data!.createRide.id).not.toBe(first.data!.createRide.id);
  });
});

describe('a request id one replica has trimmed and another has not', () => {
  // The default window: nothing is trimmed but what the test deletes.
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start();
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'asha', p: PASSWORD });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('is a new write the replica that still holds it applies too, replacing the old one', async () => {
    // Each worker trims by its own clock and schedule (and one that joined later applied
    // its rows later), so the master may forget a key that a slave still holds.
    const key = randomUUID();
    const first = await cluster.gql<Created>(CREATE, {}, { 'idempotency-key': key });
    expect(first.errors).toBeUndefined();
    const workers = await cluster.workers();
    const master = workers.find((w) => w.role === 'MASTER')!;
    const slave = workers.find((w) => w.role === 'SLAVE')!;
    // The request id the key became (gateway/service.ts writeIdentity), found by the write's seq.
    const firstSeq = Number(first.headers.get('x-dbaas-seq'));
    const { request_id: requestId } = await queryOne<{ request_id: string }>(cluster.workerDatabaseUrl(master.id), 'SELECT request_id FROM _dbaas_log WHERE seq = $1', [firstSeq]);
    const keyRows = async (workerId: string, seq?: number) =>
      Number(
        (
          await queryOne<{ n: string }>(
            cluster.workerDatabaseUrl(workerId),
            `SELECT count(*) AS n FROM _dbaas_log WHERE request_id = $1${seq === undefined ? '' : ' AND seq = $2'}`,
            seq === undefined ? [requestId] : [requestId, seq],
          )
        ).n,
      );
    await waitUntil('the slave holds the key', async () => (await keyRows(slave.id)) === 1, 10_000);
    await queryOne(cluster.workerDatabaseUrl(master.id), 'DELETE FROM _dbaas_log WHERE request_id = $1 RETURNING seq', [requestId]);

    const reused = await cluster.gql<Created>(CREATE, {}, { 'idempotency-key': key });
    expect(reused.errors).toBeUndefined();
    const seq = Number(reused.headers.get('x-dbaas-seq'));
    expect(reused.data!.createRide.id).not.toBe(first.data!.createRide.id);
    // The slave applies it (a unique violation there used to stop it, and again on every restart).
    await waitUntil(
      'the slave applied the reused key',
      async () => Number((await queryOne<{ s: string }>(cluster.workerDatabaseUrl(slave.id), 'SELECT applied_seq AS s FROM _dbaas_state')).s) >= seq,
      10_000,
    );
    expect(await keyRows(slave.id, seq)).toBe(1);
    expect((await cluster.workers()).find((w) => w.id === slave.id)?.role).toBe('SLAVE');
  });
});
