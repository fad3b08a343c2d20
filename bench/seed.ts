import { Client } from 'pg';
import { AREAS, clusterNames } from '../schema';
import { MIGRATIONS } from '../worker/migrations';
import { createLogger, type Config } from '../platform';
import { hashPassword } from '../gateway/passwords';
import { RpcClient } from '../gateway/rpcClient';
import { runPool } from './lib';

export const SEED = {
  users: Number(process.env.BENCH_USERS ?? 10_000),
  rides: Number(process.env.BENCH_RIDES ?? 50_000),
  upcomingPerRoute: 25,
};

// Routes among the first 12 areas (132 routes): with 50,000 rides that is ~25 upcoming
// rides per route, the list a rider scrolls. Over all 198 areas (39,006 routes) a route
// would hold about one ride, and Q1 would measure little but round trips.
const BENCH_AREAS = AREAS.slice(0, 12);
const ROUTES = BENCH_AREAS.flatMap((s) => BENCH_AREAS.filter((d) => d.id !== s.id).map((d) => [s.id, d.id] as const));
export const routeOf = (i: number) => ROUTES[i % ROUTES.length];
export const ROUTE_COUNT = ROUTES.length;
/** The seeded users' names, which the benchmarks' writes use as creators and riders. */
export const userName = (i: number) => `user${String(i).padStart(5, '0')}`;

/**
 * The benchmark's data set, written through ridedb's own write path (WriteQ → master →
 * log → slaves): 10,000 users, 50,000 rides over every route, riders on a third of them.
 * About 25 rides per route are upcoming (what Q1 returns); the rest are in the past.
 */
export async function seedThroughRidedb(config: Config): Promise<{ rideIds: number[] }> {
  const rpc = await RpcClient.connect(
    config.amqpUrl,
    clusterNames(config.cluster),
    `bench${process.pid}`,
    { ...config, readTimeoutMs: 30_000, writeTimeoutMs: 60_000 },
    createLogger('warn', {}),
  );
  try {
    // One hash for all: the benchmark measures the data path, not scrypt.
    const passwordHash = await hashPassword('3da541559918a808c2402bba5012f6c60b27661c');
    await runPool('users', SEED.users, 128, async (i) => {
      await rpc.write('createUser', { username: userName(i), passwordHash });
    });
    const rideIds: number[] = [];
    const upcoming = SEED.upcomingPerRoute * ROUTES.length;
    const day = 86_400_000;
    await runPool('rides', SEED.rides, 128, async (i) => {
      const [source, destination] = routeOf(i);
      const when = i < upcoming ? Date.now() + day * (1 + (i % 30)) : Date.now() - day * (1 + (i % 365));
      const { result } = await rpc.write('createRide', { createdBy: userName(i % SEED.users), timestamp: new Date(when).toISOString(), source, destination });
      rideIds[i] = result.id;
    });
    // Riders on every third ride: one to three each.
    const joined = rideIds.filter((_, i) => i % 3 === 0);
    const joins = joined.flatMap((rideId, k) => Array.from({ length: 1 + (k % 3) }, (_, r) => ({ rideId, username: userName((k * 7 + (r + 1) * 13) % SEED.users) })));
    await runPool('riders', joins.length, 256, async (i) => {
      await rpc.write('joinRide', joins[i]);
    });
    return { rideIds: joined };
  } finally {
    await rpc.close();
  }
}

const COPY_CHUNK = 5000;

export async function dropBaseline(serverUrl: string, database: string): Promise<void> {
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** The same data in a plain database for the baseline and PostGraphile: copied from a replica. */
export async function copyToBaseline(sourceUrl: string, serverUrl: string, database: string): Promise<string> {
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${database}"`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  const target = new Client({ connectionString: url.toString() });
  const source = new Client({ connectionString: sourceUrl });
  await Promise.all([target.connect(), source.connect()]);
  try {
    for (const m of MIGRATIONS) await target.query(m.sql);
    // The foreign keys a plain schema has (ridedb's replicas check areas with a CHECK
    // instead, migration 003): PostGraphile finds a ride's areas through them.
    await target.query(`ALTER TABLE rides ADD FOREIGN KEY (source) REFERENCES areas (id), ADD FOREIGN KEY (destination) REFERENCES areas (id)`);
    const tables: Array<[string, string[], string[]]> = [
      ['users', ['username', 'password_hash', 'created_at'], ['text', 'text', 'timestamptz']],
      ['rides', ['id', 'created_by', 'ts', 'source', 'destination'], ['bigint', 'text', 'timestamptz', 'int', 'int']],
      ['ride_riders', ['ride_id', 'username', 'joined_at'], ['bigint', 'text', 'timestamptz']],
    ];
    for (const [table, columns, types] of tables) {
      const { rows } = await source.query<Record<string, unknown>>(`SELECT ${columns.join(', ')} FROM ${table}`);
      for (let i = 0; i < rows.length; i += COPY_CHUNK) {
        const chunk = rows.slice(i, i + COPY_CHUNK);
        await target.query(
          `INSERT INTO ${table} (${columns.join(', ')}) SELECT * FROM unnest(${types.map((t, k) => `$${k + 1}::${t}[]`).join(', ')})`,
          columns.map((c) => chunk.map((r) => r[c])),
        );
      }
    }
    // PostGraphile's shape for Q1: a set-returning function it exposes as a query field.
    await target.query(`CREATE FUNCTION upcoming_rides(source int, destination int) RETURNS SETOF rides AS $$
      SELECT * FROM rides r WHERE r.source = $1 AND r.destination = $2 AND r.ts > now() ORDER BY r.ts, r.id
    $$ LANGUAGE sql STABLE`);
    await target.query('ANALYZE');
  } finally {
    await Promise.all([target.end(), source.end()]);
  }
  return url.toString();
}
