import { clusterNames, type FieldSelection } from '../schema';
import { RpcClient } from '../gateway/rpcClient';
import { createLogger } from '../platform';
import { PASSWORD, TestCluster, waitUntil } from './support/cluster';
import { lockRides, runningRideReads } from './support/rideLocks';

/**
 * A slave answers the selections of one ReadQ message that share a statement shape in one
 * statement (worker/slave.ts). Reads made in one turn of the event loop leave as one
 * message (gateway/rpcClient.ts), so an RPC client here sends such messages for certain,
 * where HTTP requests would be batched only as their timing falls.
 */
let cluster: TestCluster;
/** Reads that wait (10 s), and reads whose deadline passes while a lock holds them (3 s: time to see them wait on a busy machine). */
let patient: RpcClient;
let hasty: RpcClient;
const HASTY_TIMEOUT_MS = 3_000;
const rideIds: number[] = [];

const scalars = (...names: string[]) => names.map((f) => ({ key: f, field: f }));
const rideById = (id: number): FieldSelection[] => [
  {
    key: 'ride',
    field: 'ride',
    args: { id },
    select: [
      ...scalars('id', 'timestamp'),
      { key: 'createdBy', field: 'createdBy', select: scalars('username') },
      { key: 'riders', field: 'riders', args: { first: 100 }, select: scalars('username') },
    ],
  },
];
const route = (source: number, destination: number): FieldSelection[] => [
  {
    key: 'rides',
    field: 'rides',
    args: { source, destination, upcomingOnly: true, first: 100, after: null },
    select: [...scalars('id'), { key: 'riders', field: 'riders', args: { first: 100 }, select: scalars('username') }],
  },
];
const strong = { minSeq: 0, consistency: 'strong' as const };

beforeAll(async () => {
  cluster = await TestCluster.start();
  for (const u of ['ana', 'bo']) await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u, p: PASSWORD });
  for (const [i, [s, d]] of [
    [1, 2],
    [1, 2],
    [2, 3],
    [3, 1],
  ].entries()) {
    const { createRide } = await cluster.data<{ createRide: { id: number } }>(
      'mutation($by: String!, $ts: DateTimeISO!, $s: Int!, $d: Int!) { createRide(createdBy: $by, timestamp: $ts, source: $s, destination: $d) { id } }',
      { by: i % 2 ? 'ana' : 'bo', ts: new Date(Date.now() + (i + 1) * 3_600_000).toISOString(), s, d },
    );
    rideIds.push(createRide.id);
  }
  await cluster.data('mutation($r: Int!, $u: String!) { joinRide(rideId: $r, username: $u) { id } }', { r: rideIds[0], u: 'ana' });
  const { config } = cluster;
  const connect = (name: string, readTimeoutMs: number) =>
    RpcClient.connect(config.amqpUrl, clusterNames(config.cluster), `${name}${process.pid}`, { ...config, readTimeoutMs, writeTimeoutMs: 10_000 }, createLogger('warn', {}));
  patient = await connect('patient', 10_000);
  hasty = await connect('hasty', HASTY_TIMEOUT_MS);
});
afterAll(async () => {
  await patient?.close();
  await hasty?.close();
  await cluster?.stop();
});

/** Whether a statement whose text is LIKE `like` waits on the lock in some worker. */
const waiting = async (urls: string[], like: string) => (await Promise.all(urls.map((url) => runningRideReads(url, like)))).some((n) => n > 0);

/** A selectionAt answer's time left until it expires (null: never, or a plain selection's answer). */
const timeLeft = (result: unknown): number | null => (typeof result === 'object' && result !== null && 'expiresInMs' in result ? (result.expiresInMs as number | null) : null);
/** The rest of an answer: time left depends on when it was read. */
const withoutTimeLeft = (result: unknown): unknown => {
  if (typeof result !== 'object' || result === null || !('expiresInMs' in result)) return result;
  const { expiresInMs: _left, ...rest } = result;
  return rest;
};

describe('selections in one message', () => {
  it('are answered together as each is alone, with and without the seq and expiry (selection and selectionAt)', async () => {
    const asks = [...rideIds, 1_000_000].map(rideById).concat([route(1, 2), route(2, 3), route(3, 1), route(4, 5)]);
    for (const op of ['selection', 'selectionAt'] as const) {
      const locks = await lockRides(cluster);
      let together;
      try {
        // Asked in one turn: one ReadQ message. Held by the lock, its groups show as
        // statements of several columns: a column follows `doc0` (a single read's text ends
        // there), within the 1,024 characters pg_stat_activity keeps.
        const asked = Promise.all(asks.map((fields) => patient.read(op, { fields }, strong)));
        await waitUntil('reads answered together', () => waiting(locks.urls, '%AS doc0, %'), 5_000);
        await locks.release();
        together = await asked;
      } finally {
        await locks.release();
      }
      for (const [i, fields] of asks.entries()) {
        const alone = await patient.read(op, { fields }, strong);
        expect(withoutTimeLeft(together[i].result)).toEqual(withoutTimeLeft(alone.result));
        // Time left until the same departure, read earlier: a little more of it.
        const [earlier, later] = [timeLeft(together[i].result), timeLeft(alone.result)];
        if (earlier === null || later === null) expect(earlier).toBe(later);
        else expect([earlier - later >= 0, earlier - later < 60_000]).toEqual([true, true]);
      }
    }
  });

  it('fail one by one: a read PostgreSQL refuses, or one the slave refuses, fails alone', async () => {
    // 2^31 is no PostgreSQL integer: this route's statement fails, with its group's.
    const outOfRange = route(2 ** 31, 2);
    const refused: FieldSelection[] = [{ key: 'ride', field: 'ride', args: { id: rideIds[0] }, select: scalars('nope') }];
    const answers = await Promise.allSettled([
      ...[route(1, 2), outOfRange, route(2, 3)].map((fields) => patient.read('selection', { fields }, strong)),
      patient.read('selection', { fields: refused }, strong),
      ...rideIds.map((id) => patient.read('selection', { fields: rideById(id) }, strong)),
      patient.read('areas', {}, strong),
    ]);
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', ...rideIds.map(() => 'fulfilled'), 'fulfilled']);
    expect(answers[3]).toMatchObject({ reason: { code: 'BAD_USER_INPUT' } });
  });

  it('are cancelled together once past their deadline', async () => {
    const locks = await lockRides(cluster);
    try {
      const asked = Promise.allSettled(rideIds.map((id) => hasty.read('selection', { fields: rideById(id) }, strong)));
      await waitUntil('reads answered together, waiting on the lock', () => waiting(locks.urls, '%AS doc0, %'), HASTY_TIMEOUT_MS);
      for (const answer of await asked) expect(answer).toMatchObject({ status: 'rejected', reason: { code: 'UNAVAILABLE' } });
      // Told UNAVAILABLE by the gateway's own clock; the slave's part is to stop the statement.
      for (const url of locks.urls) await waitUntil('the abandoned statement cancelled', async () => (await runningRideReads(url)) === 0, 10_000);
    } finally {
      await locks.release();
    }
    const { result } = await patient.read('selection', { fields: rideById(rideIds[0]) }, strong);
    expect(JSON.parse(result)).toMatchObject({ ride: { id: rideIds[0] } });
  });
});
