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
let rpc: RpcClient;
const READ_TIMEOUT_MS = 500;
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
  rpc = await RpcClient.connect(
    config.amqpUrl,
    clusterNames(config.cluster),
    `groupedReads${process.pid}`,
    { ...config, readTimeoutMs: READ_TIMEOUT_MS, writeTimeoutMs: 10_000 },
    createLogger('warn', {}),
  );
});
afterAll(async () => {
  await rpc?.close();
  await cluster?.stop();
});

describe('selections in one message', () => {
  it('are answered as each is alone, with and without the seq and expiry (selection and selectionAt)', async () => {
    const asks = [...rideIds, 1_000_000].map(rideById).concat([route(1, 2), route(2, 3), route(3, 1), route(4, 5)]);
    for (const op of ['selection', 'selectionAt'] as const) {
      // Asked in one turn: one ReadQ message.
      const together = await Promise.all(asks.map((fields) => rpc.read(op, { fields }, strong)));
      for (const [i, fields] of asks.entries()) {
        const alone = await rpc.read(op, { fields }, strong);
        expect(together[i].result).toEqual(alone.result);
      }
    }
  });

  it('are cancelled together once past their deadline', async () => {
    const locks = await lockRides(cluster);
    try {
      const asked = Promise.allSettled(rideIds.map((id) => rpc.read('selection', { fields: rideById(id) }, strong)));
      // The reads wait on the lock as one statement of several columns.
      await waitUntil(
        'reads answered together, waiting on the lock',
        async () => (await Promise.all(locks.urls.map((url) => runningRideReads(url, '%AS doc1%')))).some((n) => n > 0),
        READ_TIMEOUT_MS,
      );
      for (const answer of await asked) expect(answer).toMatchObject({ status: 'rejected', reason: { code: 'UNAVAILABLE' } });
      for (const url of locks.urls) await waitUntil('the abandoned statement cancelled', async () => (await runningRideReads(url)) === 0, 10_000);
    } finally {
      await locks.release();
    }
    const { result } = await rpc.read('selection', { fields: rideById(rideIds[0]) }, strong);
    expect(JSON.parse(result)).toMatchObject({ ride: { id: rideIds[0] } });
  });
});
