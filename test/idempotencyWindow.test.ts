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
