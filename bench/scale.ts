import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rideCursor } from '../schema';
import { createLogger } from '../platform';
import { RpcClient } from '../gateway/rpcClient';
import { NODE_PROCESS_ENV, WORKER_NODE_FLAGS } from '../gateway/nodeFlags';
import { appliedSeqOf, queryOne, TestCluster, waitUntil, WORKER_ENTRY } from '../test/support/cluster';
import { load, peakRssMb, runPool, type LoadResult } from './lib';
import { spliceIntoBenchmarks } from './report';
import { dropBaseline as dropDatabase } from './seed';

/**
 * `npm run bench:scale`: one cluster (a master and a slave) grown through ridedb's write
 * path to each size in turn (default 50k, 500k and 5M rides, with a user per 10 rides and
 * a rider per 3), measured at each size:
 * - Q1 (a route's upcoming rides), Q2 (a ride by id), M1 (createRide) and a paginated
 *   history read (a page of 1,000 from a random point of a route's history), through the
 *   gateway; errors counted from GraphQL bodies too; the largest list answer seen;
 * - a new worker's join by snapshot (forced, WORKER_BOOTSTRAP=snapshot) and by whatever
 *   the log allows (replay, or a snapshot once the log is trimmed), with peak RSS;
 * - a crashed master's rejoin (crashMaster → the replacement serving at the head), with
 *   reads sent all along, counting those that failed;
 * - peak RSS of the gateway and workers, disk per worker and for the log.
 * Between seeding and measuring, every worker's database is vacuumed and analysed (as
 * autovacuum would, on its own schedule). Results: bench/scale-results.json, and a growth
 * table in bench/SCALE.md (in BENCHMARKS.md).
 */
const SIZES = (process.env.BENCH_SCALE_SIZES ?? '50000,500000,5000000').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const WRITERS = Number(process.env.BENCH_SCALE_WRITERS ?? 256);
const ROOT = path.resolve(__dirname, '../..');
const ROUTES = 200;
const YEAR = 365 * 86_400_000;
const PAGE = 1000;

const Q1 = 'query($s: Int!, $d: Int!) { rides(source: $s, destination: $d) { id timestamp createdBy { username } riders { username } } }';
const Q2 = 'query($id: Int!) { ride(id: $id) { id timestamp createdBy { username createdAt } source { name } destination { name } riders { username createdAt } } }';
const M1 = 'mutation($ts: DateTimeISO!, $s: Int!, $d: Int!) { createRide(createdBy: "u0", timestamp: $ts, source: $s, destination: $d) { id } }';
const HISTORY = `query($s: Int!, $d: Int!, $after: String) { rides(source: $s, destination: $d, upcomingOnly: false, first: ${PAGE}, after: $after) { id cursor timestamp } }`;

/** Route j: a fixed pair of distinct areas. */
function route(j: number): [number, number] {
  const s = 1 + (j % 198);
  const d = 1 + ((j * 7 + 3) % 198);
  return [s, d === s ? 1 + (s % 198) : d];
}
const randomInt = (n: number) => Math.floor(Math.random() * n);
const request = (query: string, variables: Record<string, unknown>) => JSON.stringify({ query, variables });
/** Rides spread over four years around the start: about half are upcoming at every size. */
const started = Date.now();
const rideTime = (k: number) => new Date(started - 2 * YEAR + ((Math.imul(k, 0x9e3779b1) >>> 0) % 4_000_000) * (YEAR / 1_000_000)).toISOString();

interface SizeResult {
  rides: number;
  seed_writes_per_s: number;
  q1: LoadResult;
  q2: LoadResult;
  m1: LoadResult;
  history: LoadResult;
  max_page_rows: number;
  snapshot_join_s: number;
  snapshot_rss_mb: number;
  replay_join_s: number | null;
  replay_rss_mb: number;
  replay_by: 'log' | 'snapshot';
  master_rejoin_s: number;
  reads_during_rejoin: number;
  reads_failed_during_rejoin: number;
  peak_rss_mb: { gateway: number; master: number; slave: number };
  disk_mb: { worker: number; log: number };
}

async function main(): Promise<void> {
  const cluster = await TestCluster.start({ LOG_LEVEL: 'warn', MUTATIONS_PER_MINUTE_PER_IP: '0', MIN_SLAVES: '1', MAX_SLAVES: '1' });
  const rpc = await RpcClient.connect(
    cluster.config.amqpUrl,
    cluster.names,
    `scale${process.pid}`,
    { ...cluster.config, readTimeoutMs: 30_000, writeTimeoutMs: 120_000 },
    createLogger('warn', {}),
  );
  // Interrupted (Ctrl-C, a timeout's SIGTERM), the cluster goes too: it is hours of data.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`bench:scale: ${signal}, stopping the cluster\n`);
      void Promise.allSettled([rpc.close(), cluster.stop()]).then(() => process.exit(130));
    });
  }
  const results: SizeResult[] = [];
  const rideIds: number[] = [];
  let users = 0;
  try {
    for (const size of SIZES) {
      const seeded = performance.now();
      const before = rideIds.length;
      const wantUsers = Math.ceil(size / 10);
      await runPool(`users up to ${wantUsers}`, wantUsers - users, WRITERS, async (i) => {
        await rpc.write('createUser', { username: `u${users + i}`, passwordHash: 'bench-not-a-real-hash' });
      });
      users = wantUsers;
      await runPool(`rides up to ${size}`, size - before, WRITERS, async (i) => {
        const k = before + i;
        const [source, destination] = route(k % ROUTES);
        const ride = await rpc.write('createRide', { createdBy: `u${k % users}`, timestamp: rideTime(k), source, destination });
        rideIds.push(ride.result.id);
        if (k % 3 === 0) await rpc.write('joinRide', { rideId: ride.result.id, username: `u${(k * 31 + 7) % users}` });
      });
      const writes = wantUsers + (size - before) + Math.ceil((size - before) / 3);
      const seedWritesPerS = Math.round(writes / ((performance.now() - seeded) / 1000));
      process.stdout.write(`${size} rides: seeded at ${seedWritesPerS} writes/s\n`);
      await settle(cluster);
      results.push(await measureAt(cluster, size, rideIds, seedWritesPerS));
      writeResults(results);
    }
  } finally {
    await rpc.close();
    await cluster.stop();
  }
}

async function measureAt(cluster: TestCluster, size: number, rideIds: number[], seedWritesPerS: number): Promise<SizeResult> {
  const url = `${cluster.url}/graphql`;
  const say = (what: string, r: LoadResult) =>
    process.stdout.write(`  ${what.padEnd(8)} ${String(r.rps).padStart(6)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms  errors ${r.errors}\n`);
  const q1Request = () => {
    const [s, d] = route(randomInt(ROUTES));
    return request(Q1, { s, d });
  };
  // Unmeasured: fills the caches VACUUM and CHECKPOINT left with other pages.
  await load(url, q1Request, CONNECTIONS, 2);
  const q1 = await load(url, q1Request, CONNECTIONS, SECONDS);
  say('Q1', q1);
  const q2 = await load(url, () => request(Q2, { id: rideIds[randomInt(rideIds.length)] }), CONNECTIONS, SECONDS);
  say('Q2', q2);
  let m = 0;
  const m1 = await load(
    url,
    () => {
      const [s, d] = route(randomInt(ROUTES));
      return request(M1, { ts: new Date(started + 10 * YEAR + m++ * 1000).toISOString(), s, d });
    },
    CONNECTIONS,
    SECONDS,
  );
  say('M1', m1);
  let maxPageRows = 0;
  const history = await load(
    url,
    () => {
      const [s, d] = route(randomInt(ROUTES));
      return request(HISTORY, { s, d, after: rideCursor(rideTime(randomInt(size)), 0) });
    },
    CONNECTIONS,
    SECONDS,
    (body) => {
      const rows = (JSON.parse(body) as { data?: { rides?: unknown[] } }).data?.rides?.length ?? 0;
      maxPageRows = Math.max(maxPageRows, rows);
    },
  );
  say('history', history);

  const workers = await cluster.workers();
  const master = workers.find((w) => w.role === 'MASTER')!;
  const slave = workers.find((w) => w.role === 'SLAVE')!;
  const peak = { gateway: peakRssMb(cluster.gateway.pid!), master: peakRssMb(master.pid), slave: peakRssMb(slave.pid) };
  const disk = { worker: await databaseMb(cluster.workerDatabaseUrl(master.id)), log: logMb(cluster.names.syncLog) };

  const snapshot = await join(cluster, `snap_${size}`, 'snapshot');
  // Once RabbitMQ has trimmed the log's head, a new worker can only load a snapshot, just
  // measured: no second one.
  const trimmed = disk.log >= 0.75 * (cluster.config.logRetentionBytes / 2 ** 20);
  const replay = trimmed ? { seconds: 0, rssMb: 0, by: 'snapshot' as const } : await join(cluster, `join_${size}`, 'auto');
  const rejoin = await masterRejoin(cluster, rideIds);
  const result: SizeResult = {
    rides: size,
    seed_writes_per_s: seedWritesPerS,
    q1,
    q2,
    m1,
    history,
    max_page_rows: maxPageRows,
    snapshot_join_s: snapshot.seconds,
    snapshot_rss_mb: snapshot.rssMb,
    replay_join_s: replay.by === 'log' ? replay.seconds : null,
    replay_rss_mb: replay.rssMb || snapshot.rssMb,
    replay_by: replay.by,
    master_rejoin_s: rejoin.seconds,
    reads_during_rejoin: rejoin.reads,
    reads_failed_during_rejoin: rejoin.failed,
    peak_rss_mb: peak,
    disk_mb: disk,
  };
  process.stdout.write(`  ${JSON.stringify({ max_page_rows: maxPageRows, snapshot, replay, rejoin, peak, disk })}\n`);
  return result;
}

/** Starts a new worker, times it to the head of the log, then stops it and drops its database. */
async function join(cluster: TestCluster, workerId: string, bootstrap: 'snapshot' | 'auto'): Promise<{ seconds: number; rssMb: number; by: 'log' | 'snapshot' }> {
  const masterDb = cluster.workerDatabaseUrl((await cluster.master()).id);
  const head = await appliedSeqOf(masterDb);
  let out = '';
  const began = performance.now();
  const child = spawn(process.execPath, [...WORKER_NODE_FLAGS, WORKER_ENTRY], {
    env: { ...NODE_PROCESS_ENV, ...cluster.workerEnv(workerId), LOG_LEVEL: 'info', WORKER_BOOTSTRAP: bootstrap },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-100_000)));
  const joinerDb = cluster.workerDatabaseUrl(workerId);
  let rssMb = 0;
  try {
    await waitUntil(
      `worker ${workerId} at seq ${head}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`worker ${workerId} exited (${child.exitCode}): ${out.slice(-2000)}`);
        rssMb = Math.max(rssMb, peakRssMb(child.pid!));
        return (await appliedSeqOf(joinerDb).catch(() => 0)) >= head;
      },
      3_600_000,
    );
    rssMb = Math.max(rssMb, peakRssMb(child.pid!));
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    await dropDatabase(cluster.config.databaseUrl, new URL(joinerDb).pathname.slice(1));
  }
  const seconds = Number(((performance.now() - began) / 1000).toFixed(2));
  return { seconds, rssMb, by: /snapshot loaded/.test(out) ? 'snapshot' : 'log' };
}

/** crashMaster, then the time until the replacement under the same id serves at the head; reads run throughout. */
async function masterRejoin(cluster: TestCluster, rideIds: number[]): Promise<{ seconds: number; reads: number; failed: number }> {
  let reading = true;
  let reads = 0;
  let failed = 0;
  const reader = async () => {
    while (reading) {
      const res = await cluster.gql(Q2, { id: rideIds[randomInt(rideIds.length)] }).catch((err: Error) => ({ errors: [{ message: err.message }] }));
      reads++;
      if (res.errors?.length) failed++;
    }
  };
  const readers = Array.from({ length: 4 }, reader);
  const began = performance.now();
  const crashed = await cluster.admin<{ crashMaster: { id: string } }>('mutation { crashMaster { id } }');
  const id = crashed.data?.crashMaster.id;
  if (!id) throw new Error(`crashMaster failed: ${JSON.stringify(crashed.errors)}`);
  const headAtCrash = Math.max(...(await cluster.workers()).map((w) => w.appliedSeq));
  await waitUntil(`${id} serving again`, async () => (await cluster.workers()).some((w) => w.id === id && w.role === 'SLAVE' && w.appliedSeq >= headAtCrash), 600_000);
  const seconds = Number(((performance.now() - began) / 1000).toFixed(2));
  reading = false;
  await Promise.all(readers);
  return { seconds, reads, failed };
}

/**
 * What autovacuum would do after the bulk load, done before measuring: otherwise its
 * passes over the freshly written tables (and the checkpoints they cause) land in the
 * measurements at random, and the figures compare seeding aftermaths, not sizes.
 */
/**
 * Steady state before measuring, as a DBA would leave a database after a bulk load:
 * VACUUM (ANALYZE) sets the visibility map (index-only scans) and statistics; it also
 * dirties every page, so a CHECKPOINT follows, else the checkpointer writes gigabytes
 * during the measurement (at 5M rides the first Q1/Q2 runs fell to ~0.6x with p99 over
 * 500 ms while M1, measured later, did not); then no autovacuum still running on the
 * workers' databases.
 */
async function settle(cluster: TestCluster): Promise<void> {
  const began = performance.now();
  const urls = (await cluster.workers()).map((w) => cluster.workerDatabaseUrl(w.id));
  for (const url of urls) await queryOne(url, 'VACUUM (ANALYZE)');
  for (const url of urls) await queryOne(url, 'CHECKPOINT');
  await waitUntil(
    'autovacuum to finish on the workers',
    async () => {
      const busy = await Promise.all(
        urls.map((url) =>
          queryOne<{ n: number }>(url, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND datname = current_database()"),
        ),
      );
      return busy.every((b) => b.n === 0);
    },
    30 * 60_000,
  );
  process.stdout.write(`  settled (VACUUM ANALYZE, CHECKPOINT, autovacuum idle) in ${((performance.now() - began) / 1000).toFixed(1)} s\n`);
}

async function databaseMb(url: string): Promise<number> {
  const { mb } = await queryOne<{ mb: number }>(url, 'SELECT round(pg_database_size(current_database()) / 1048576.0)::int AS mb');
  return mb;
}

/** The stream's segments on disk (RabbitMQ keeps them in `stream/__<name, dots as _>_<id>` under its mnesia directory). */
function logMb(streamQueue: string): number {
  try {
    const out = execFileSync('sh', [
      '-c',
      `du -sm /var/lib/rabbitmq/mnesia/*/stream/__${streamQueue.replace(/[^A-Za-z0-9]/g, '_')}_* 2>/dev/null | awk '{s+=$1} END {print s+0}'`,
    ]).toString();
    return Number(out.trim());
  } catch (err) {
    process.stderr.write(`could not size the log: ${(err as Error).message}\n`);
    return -1;
  }
}

function writeResults(results: SizeResult[]): void {
  fs.writeFileSync(
    path.join(ROOT, 'bench/scale-results.json'),
    JSON.stringify({ measuredAt: new Date().toISOString(), machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB`, sizes: results }, null, 2) + '\n',
  );
  const first = results[0];
  const factor = (now: number, then: number) => (then ? `${(now / then).toFixed(2)}×` : '');
  const rows = results.map(
    (r) =>
      `| ${r.rides.toLocaleString('en')} | ${r.seed_writes_per_s} | ${r.q1.rps} (${r.q1.p99}) ${factor(r.q1.rps, first.q1.rps)} | ${r.q2.rps} (${r.q2.p99}) ${factor(r.q2.rps, first.q2.rps)} | ${r.m1.rps} (${r.m1.p99}) ${factor(r.m1.rps, first.m1.rps)} | ${r.history.rps} (${r.history.p99}) | ${r.q1.errors + r.q2.errors + r.m1.errors + r.history.errors} | ${r.max_page_rows} | ${r.snapshot_join_s} s, ${r.snapshot_rss_mb} MB | ${r.replay_by === 'log' ? `${r.replay_join_s} s` : 'log trimmed: snapshot'}, ${r.replay_rss_mb} MB | ${r.master_rejoin_s} s (${r.reads_failed_during_rejoin}/${r.reads_during_rejoin} reads failed) | ${r.peak_rss_mb.gateway} / ${r.peak_rss_mb.master} / ${r.peak_rss_mb.slave} | ${r.disk_mb.worker} / ${r.disk_mb.log} |`,
  );
  const md = [
    '<!-- scale:start -->',
    '## Growing the data (`npm run bench:scale`)',
    '',
    `One cluster (a master and a slave) grown through ridedb's write path; measured ${new Date().toISOString().slice(0, 10)}. req/s (p99 ms) and the factor against the smallest size; errors include GraphQL error bodies. History: a page of ${PAGE} from a random point of a route's history. Joins: a new worker to the head of the log, by a forced snapshot and by the log where it still reaches back, with the joiner's peak RSS. Rejoin: \`crashMaster\` until the replacement serves at the head, with four readers running throughout.`,
    '',
    '| rides | seeding writes/s | Q1 | Q2 | M1 | history page | errors | largest list | snapshot join | log join | master rejoin | peak RSS MB gateway / master / slave | disk MB worker / log |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    'Raw figures: `bench/scale-results.json`; what they mean: *Growing the data* in the notes above (`bench/NOTES.md`).',
    '<!-- scale:end -->',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(ROOT, 'bench/SCALE.md'), md);
  spliceIntoBenchmarks(ROOT, 'scale', md);
}

main().catch((err: Error) => {
  process.stderr.write(`bench:scale failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
