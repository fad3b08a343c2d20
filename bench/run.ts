import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { TestCluster, waitUntil } from '../test/support/cluster';
import { load, peakRssMb, pidsNamed, startServer, withCpuSplit, type CpuSplit, type LoadResult, type ProcessGroups } from './lib';
import { sqlLimit } from './sqlLimit';
import { writeReport, type BenchResults, type Row } from './report';
import { copyToBaseline, dropBaseline, ROUTE_COUNT, routeOf, SEED, seedThroughRidedb, userName } from './seed';

/**
 * `npm run bench`: ridedb against the GraphQL servers people would otherwise run on the
 * same data — Mercurius (Fastify, graphql-jit, batched loaders), PostGraphile 4, and the
 * Apollo baseline (ridedb's own resolvers on one database) — and against two limits: the
 * slave's SQL alone through pg, and a bare Node HTTP server with a fixed body. Rounds are
 * interleaved (every system once per round) and repeated, so noise hits all alike and
 * the spread shows. Then ridedb with more slaves, writes, and a mixed rideshare day (90 %
 * route reads skewed to popular routes, 10 % creates and joins) at 256 connections.
 * Every system's answers are compared for equal content before anything is timed.
 * Writes bench/results.json and BENCHMARKS.md (with bench/chart.svg).
 */
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const MIX_CONNECTIONS = Number(process.env.BENCH_MIX_CONNECTIONS ?? 256);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MORE_SLAVES = (process.env.BENCH_SLAVES ?? '2,4').split(',').filter(Boolean).map(Number);
const ROOT = path.resolve(__dirname, '../..');

const pick = <T>(xs: readonly T[]) => xs[Math.floor(Math.random() * xs.length)];

/** Routes by popularity: the k-th most popular is asked with weight 1/k (Zipf, s = 1). */
function zipfRoutes(): () => readonly [number, number] {
  const cdf: number[] = [];
  let total = 0;
  for (let k = 1; k <= ROUTE_COUNT; k++) cdf.push((total += 1 / k));
  return () => {
    const x = Math.random() * total;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return routeOf(lo);
  };
}
const uniformRoute = () => routeOf(Math.floor(Math.random() * ROUTE_COUNT));

interface System {
  name: string;
  url: string;
  q1(s: number, d: number): string;
  q2(id: number): string;
  /** The mix's writes through the system's own API; absent: it serves reads only. */
  writes?: { create(s: number, d: number): string; join(rideId: number): string };
  /** Rides with creator and riders, from a Q1 or Q2 answer, in a form every system shares. */
  rides(data: unknown): NormalRide[];
}

interface NormalRide {
  id: number;
  by: string;
  riders: string[];
  names?: unknown;
  /** The ride's time, its creator's and riders' createdAt: compared to the millisecond (PostgreSQL keeps microseconds, and servers round them differently). */
  times: number[];
}

const request = (query: string, variables: Record<string, unknown>) => JSON.stringify({ query, variables });

// Queries take variables, as a well-behaved client sends them.
const Q1 = 'query($s: Int!, $d: Int!) { rides(source: $s, destination: $d) { id timestamp createdBy { username } riders { username } } }';
const Q2 = 'query($id: Int!) { ride(id: $id) { id timestamp createdBy { username createdAt } source { name } destination { name } riders { username createdAt } } }';
const M_CREATE = 'mutation($by: String!, $ts: DateTimeISO!, $s: Int!, $d: Int!) { createRide(createdBy: $by, timestamp: $ts, source: $s, destination: $d) { id } }';
const M_JOIN = 'mutation($id: Int!, $u: String!) { joinRide(rideId: $id, username: $u) { id } }';
const PG_Q1 =
  'query($s: Int!, $d: Int!) { upcomingRides(source: $s, destination: $d, first: 100) { nodes { id ts userByCreatedBy { username } rideRidersByRideId(orderBy: [JOINED_AT_ASC, USERNAME_ASC], first: 100) { nodes { userByUsername { username } } } } } }';
const PG_Q2 =
  'query($id: BigInt!) { rideById(id: $id) { id ts userByCreatedBy { username createdAt } areaBySource { name } areaByDestination { name } rideRidersByRideId(orderBy: [JOINED_AT_ASC, USERNAME_ASC], first: 100) { nodes { userByUsername { username createdAt } } } } }';
// PostGraphile 5 names a table's own `id` column `rowId` (`id` is the global node id).
const PG5_Q1 = PG_Q1.replace('nodes { id ts', 'nodes { rowId ts');
const PG5_Q2 = PG_Q2.replace('rideById(id: $id) { id ts', 'rideByRowId(rowId: $id) { rowId ts');

let writeCount = 0;
const graphqlWrites = {
  create: (s: number, d: number) =>
    request(M_CREATE, { by: userName(writeCount++ % SEED.users), ts: new Date(Date.now() + 86_400_000 * (1 + Math.random() * 30)).toISOString(), s, d }),
  join: (rideId: number) => request(M_JOIN, { id: rideId, u: userName(Math.floor(Math.random() * SEED.users)) }),
};

interface GqlRide {
  id: number;
  timestamp: string;
  createdBy: { username: string; createdAt?: string };
  source?: { name: string };
  destination?: { name: string };
  riders: Array<{ username: string; createdAt?: string }>;
}
const normalGql = (r: GqlRide): NormalRide => ({
  id: r.id,
  by: r.createdBy.username,
  riders: r.riders.map((u) => u.username),
  names: r.source ? [r.source.name, r.destination?.name] : undefined,
  times: [r.timestamp, r.createdBy.createdAt, ...r.riders.map((u) => u.createdAt)].filter((t): t is string => t !== undefined).map(Date.parse),
});

/** Whether two systems' rides are the same: equal but for times, which may differ by a rounded millisecond. */
function sameRides(a: NormalRide[], b: NormalRide[]): boolean {
  const strip = (rs: NormalRide[]) => JSON.stringify(rs.map((r) => ({ ...r, times: r.times.length })));
  return strip(a) === strip(b) && a.every((r, i) => r.times.every((t, k) => Math.abs(t - b[i].times[k]) <= 1));
}

function graphqlSystem(name: string, url: string): System {
  return {
    name,
    url,
    q1: (s, d) => request(Q1, { s, d }),
    q2: (id) => request(Q2, { id }),
    writes: graphqlWrites,
    rides: (data) => {
      const d = data as { rides?: GqlRide[]; ride?: GqlRide | null };
      return d.rides ? d.rides.map(normalGql) : d.ride ? [normalGql(d.ride)] : [];
    },
  };
}

interface PgRide {
  id?: string;
  rowId?: string;
  ts: string;
  userByCreatedBy: { username: string; createdAt?: string };
  areaBySource?: { name: string };
  areaByDestination?: { name: string };
  rideRidersByRideId: { nodes: Array<{ userByUsername: { username: string; createdAt?: string } }> };
}
function postgraphileSystem(name: 'postgraphile' | 'postgraphile5', url: string): System {
  const [q1, q2, byId] = name === 'postgraphile' ? [PG_Q1, PG_Q2, 'rideById'] : [PG5_Q1, PG5_Q2, 'rideByRowId'];
  const normal = (r: PgRide): NormalRide =>
    normalGql({
      id: Number(r.id ?? r.rowId),
      timestamp: r.ts,
      createdBy: r.userByCreatedBy,
      source: r.areaBySource,
      destination: r.areaByDestination,
      riders: r.rideRidersByRideId.nodes.map((n) => n.userByUsername),
    });
  return {
    name,
    url,
    q1: (s, d) => request(q1, { s, d }),
    q2: (id) => request(q2, { id: String(id) }),
    rides: (data) => {
      const d = data as { upcomingRides?: { nodes: PgRide[] } } & Record<string, PgRide | null | undefined>;
      const one = d[byId];
      return d.upcomingRides ? d.upcomingRides.nodes.map(normal) : one ? [normal(one)] : [];
    },
  };
}

async function ask(system: System, body: string): Promise<unknown> {
  const res = await fetch(system.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const json = (await res.json()) as { data?: unknown; errors?: unknown };
  if (json.errors || !json.data) throw new Error(`${system.name} answered ${JSON.stringify(json).slice(0, 300)}`);
  return json.data;
}

/** Fails the run unless every system answers the same rides, creators and riders as ridedb for every route and a sample of rides. */
async function checkSameAnswers(systems: System[], rideIds: number[]): Promise<void> {
  const questions: Array<(s: System) => string> = [];
  for (let i = 0; i < ROUTE_COUNT; i++) {
    const [s, d] = routeOf(i);
    questions.push((sys) => sys.q1(s, d));
  }
  for (let i = 0; i < 50; i++) {
    const id = rideIds[(i * 997) % rideIds.length];
    questions.push((sys) => sys.q2(id));
  }
  let rides = 0;
  for (const q of questions) {
    const [reference, ...others] = await Promise.all(systems.map(async (sys) => sys.rides(await ask(sys, q(sys)))));
    rides += reference.length;
    others.forEach((answer, i) => {
      if (!sameRides(answer, reference)) {
        throw new Error(
          `${systems[i + 1].name} answered differently from ${systems[0].name}: ${JSON.stringify(answer).slice(0, 300)} vs ${JSON.stringify(reference).slice(0, 300)}`,
        );
      }
    });
  }
  process.stdout.write(`  all ${systems.length} systems gave the same ${rides} rides (with creators and riders) for ${questions.length} questions\n`);
}

async function main(): Promise<void> {
  const started = Date.now();
  // The write limit is off: the benchmark measures capacity from one address.
  const cluster = await TestCluster.start({ LOG_LEVEL: 'warn', MAX_SLAVES: String(Math.max(1, ...MORE_SLAVES)), MUTATIONS_PER_MINUTE_PER_IP: '0' });
  const servers: ChildProcess[] = [];
  let uncachedGateway: TestCluster | undefined;
  const baselineName = `${cluster.config.cluster}_baseline`;
  try {
    // MAX_SLAVES is raised for the slave-count rows, so the autoscaler would add slaves under
    // the read rounds' load (it did: up to four by round 2). Pinned: ridedb rows are one slave.
    await cluster.admin('mutation { scaleSlaves(count: 1) { desiredSlaves } }');
    await waitUntil('1 slave', async () => (await cluster.workers()).filter((w) => w.role === 'SLAVE').length === 1, 60_000);
    process.stdout.write(`seeding ${SEED.users} users, ${SEED.rides} rides through ridedb (cluster ${cluster.config.cluster})\n`);
    const { rideIds } = await seedThroughRidedb(cluster.config);
    const master = await cluster.master();
    const baselineDb = await copyToBaseline(cluster.workerDatabaseUrl(master.id), cluster.config.databaseUrl, baselineName);
    // A second gateway of the same cluster without a read cache: ridedb's uncached figures.
    uncachedGateway = await cluster.addGateway({ READ_CACHE_BYTES: '0' });
    const basePort = cluster.config.port + 100;
    const start = async (script: string, port: number, ready: string, env: Record<string, string> = {}, node?: string) => {
      servers.push(await startServer(path.join(ROOT, script), { DATABASE_URL: baselineDb, PORT: String(port), ...env }, ready, node));
      return `http://127.0.0.1:${port}/graphql`;
    };
    const ridedb = graphqlSystem('ridedb', `${uncachedGateway.url}/graphql`);
    const ridedbCached = graphqlSystem('ridedb-cached', `${cluster.url}/graphql`);
    const mercurius = graphqlSystem('mercurius', await start('bench/mercurius/server.js', basePort + 1, 'mercurius ready'));
    const postgraphile = postgraphileSystem('postgraphile', await start('bench/postgraphile/server.js', basePort + 2, 'postgraphile ready'));
    const node22 = path.join(ROOT, 'bench/postgraphile5/node_modules/.bin/node');
    const postgraphile5 = postgraphileSystem('postgraphile5', await start('bench/postgraphile5/server.mjs', basePort + 6, 'postgraphile5 ready', {}, node22));
    const baseline = { ...graphqlSystem('baseline', await start('dist/bench/baselineServer.js', basePort + 3, 'baseline ready')), writes: undefined };
    const peers = [ridedb, ridedbCached, mercurius, postgraphile, postgraphile5, baseline];
    await checkSameAnswers(peers, rideIds);

    const [fs1, fd1] = routeOf(0);
    const fixedBodies = { q1: JSON.stringify({ data: await ask(ridedb, ridedb.q1(fs1, fd1)) }), q2: JSON.stringify({ data: await ask(ridedb, ridedb.q2(rideIds[0])) }) };
    const httpLimit = {
      q1: await start('dist/bench/fixedBodyServer.js', basePort + 4, 'fixed body ready', { BODY: fixedBodies.q1 }),
      q2: await start('dist/bench/fixedBodyServer.js', basePort + 5, 'fixed body ready', { BODY: fixedBodies.q2 }),
    };
    // The plans the gateway makes of Q1 and Q2 (pages filled in), as a slave receives them.
    const scalars = (...names: string[]) => names.map((f) => ({ key: f, field: f }));
    const sqlOf = {
      q1: () => {
        const [source, destination] = uniformRoute();
        const select = [
          ...scalars('id', 'timestamp'),
          { key: 'createdBy', field: 'createdBy', select: scalars('username') },
          { key: 'riders', field: 'riders', args: { first: 100 }, select: scalars('username') },
        ];
        return [{ key: 'rides', field: 'rides', args: { source, destination, upcomingOnly: true, first: 100, after: null }, select }];
      },
      q2: () => [
        {
          key: 'ride',
          field: 'ride',
          args: { id: pick(rideIds) },
          select: [
            ...scalars('id', 'timestamp'),
            { key: 'createdBy', field: 'createdBy', select: scalars('username', 'createdAt') },
            { key: 'source', field: 'source', select: scalars('name') },
            { key: 'destination', field: 'destination', select: scalars('name') },
            { key: 'riders', field: 'riders', args: { first: 100 }, select: scalars('username', 'createdAt') },
          ],
        },
      ],
    };

    const rows: Row[] = [];
    const record = (system: string, query: Row['query'], r: LoadResult & Partial<CpuSplit>, connections: number) => {
      process.stdout.write(
        `  ${system.padEnd(18)} ${query.padEnd(4)} ${String(r.rps).padStart(6)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms  (${connections} conn)${r.errors ? `  ERRORS ${r.errors}` : ''}\n`,
      );
      if (r.errors) throw new Error(`${system} ${query}: ${r.errors} failed requests`);
      rows.push({ system, query, connections, ...r });
    };
    // Where each process's peak falls, phase by phase (VmHWM only grows).
    const peaksSoFar = async (phase: string) => {
      const workers = (await cluster.workers()).map((w) => `${w.role.toLowerCase()} ${peakRssMb(w.pid)}`);
      process.stdout.write(
        `  peak RSS after ${phase}: gateway ${peakRssMb(cluster.gateway.pid!)} MB, uncached gateway ${peakRssMb(uncachedGateway!.gateway.pid!)} MB, ${workers.join(', ')} MB\n`,
      );
    };
    /** ridedb's processes by role, for the CPU split of a load sent to `serving`. */
    const ridedbProcesses = (serving: TestCluster) => async (): Promise<ProcessGroups> => {
      const workers = await cluster.workers();
      return {
        'serving gateway': [serving.gateway.pid!],
        'other gateway': [(serving === cluster ? uncachedGateway! : cluster).gateway.pid!],
        master: workers.filter((w) => w.role === 'MASTER').map((w) => w.pid),
        slaves: workers.filter((w) => w.role === 'SLAVE').map((w) => w.pid),
        RabbitMQ: pidsNamed('beam.smp'),
        PostgreSQL: pidsNamed('postgres'),
        'load generator': [process.pid],
      };
    };
    const splitCpu = (serving: TestCluster, run: () => Promise<LoadResult>) => withCpuSplit(ridedbProcesses(serving), run);
    const measure = async (system: System, query: 'q1' | 'q2', name = system.name) => {
      const make = query === 'q1' ? () => system.q1(...uniformRoute()) : () => system.q2(pick(rideIds));
      const run = () => load(system.url, make, CONNECTIONS, SECONDS);
      record(name, query, system === ridedb ? await splitCpu(uncachedGateway!, run) : await run(), CONNECTIONS);
    };

    for (let round = 1; round <= ROUNDS; round++) {
      process.stdout.write(`round ${round}/${ROUNDS}: reads at ${CONNECTIONS} connections, ${SECONDS} s each (ridedb with 1 slave)\n`);
      for (const q of ['q1', 'q2'] as const) {
        for (const system of peers) await measure(system, q);
        if (round === 1) {
          record('sql_limit', q, await sqlLimit(baselineDb, CONNECTIONS, SECONDS, sqlOf[q]), CONNECTIONS);
          record('http_limit', q, await load(httpLimit[q], () => '{}', CONNECTIONS, SECONDS), CONNECTIONS);
        }
      }
    }

    await peaksSoFar('seeding and the read rounds');
    for (const slaves of MORE_SLAVES) {
      await cluster.admin(`mutation { scaleSlaves(count: ${slaves}) { desiredSlaves } }`);
      await waitUntil(`${slaves} serving slaves`, async () => (await cluster.workers()).filter((w) => w.role === 'SLAVE').length === slaves, 120_000);
      process.stdout.write(`ridedb with ${slaves} slaves\n`);
      for (const q of ['q1', 'q2'] as const) await measure(ridedb, q, `ridedb-${slaves}-slaves`);
    }
    if (MORE_SLAVES.length) {
      await cluster.admin('mutation { scaleSlaves(count: 1) { desiredSlaves } }');
      await waitUntil('1 slave', async () => (await cluster.workers()).filter((w) => w.role === 'SLAVE').length === 1, 60_000);
    }

    // In rounds like the reads: one 8-second figure varies as much as the targets' margins.
    for (let round = 1; round <= ROUNDS; round++) {
      process.stdout.write(`writes (createRide), round ${round}/${ROUNDS}\n`);
      for (const connections of [CONNECTIONS, MIX_CONNECTIONS]) {
        const r = await splitCpu(cluster, () => load(ridedbCached.url, () => graphqlWrites.create(...uniformRoute()), connections, SECONDS));
        record('ridedb', connections === CONNECTIONS ? 'm1' : 'm1_256', r, connections);
      }
    }

    await peaksSoFar('writes');
    process.stdout.write(`mixed day: 90 % route reads (Zipf over ${ROUTE_COUNT} routes), 10 % creates and joins, ${MIX_CONNECTIONS} connections\n`);
    const popular = zipfRoutes();
    for (const system of peers) {
      const writes = system.writes;
      const make = () => {
        const x = Math.random();
        if (!writes || x < 0.9) return system.q1(...popular());
        return x < 0.95 ? writes.create(...popular()) : writes.join(pick(rideIds));
      };
      const name = system === ridedb ? 'ridedb-uncached' : system.name;
      const run = () => load(system.url, make, MIX_CONNECTIONS, SECONDS);
      const serving = system === ridedb ? uncachedGateway : system === ridedbCached ? cluster : undefined;
      record(writes ? name : `${name} (reads only)`, 'mix', serving ? await splitCpu(serving, run) : await run(), MIX_CONNECTIONS);
    }

    await peaksSoFar('the mixed day');
    const gatewayPids = [cluster.gateway.pid!, uncachedGateway.gateway.pid!];
    const workers = await cluster.workers();
    const results: BenchResults = summarize(rows, {
      gatewayRss: Math.max(...gatewayPids.map(peakRssMb)),
      workerRss: Math.max(...workers.map((w) => peakRssMb(w.pid))),
      twoWorkersRss: workers
        .map((w) => peakRssMb(w.pid))
        .sort((a, b) => b - a)
        .slice(0, 2)
        .reduce((a, b) => a + b, 0),
    });
    writeReport(ROOT, results, rows, {
      command: 'npm run bench',
      machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
      connections: CONNECTIONS,
      seconds: SECONDS,
      rounds: ROUNDS,
      cores: os.cpus().length,
      minutes: (Date.now() - started) / 60_000,
    });
    process.stdout.write(`\nwrote bench/results.json and BENCHMARKS.md in ${((Date.now() - started) / 60_000).toFixed(1)} min\n`);
  } finally {
    for (const s of servers) s.kill('SIGTERM');
    await uncachedGateway?.stopGateway();
    await cluster.stop();
    await dropBaseline(cluster.config.databaseUrl, baselineName);
  }
}

const mean = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length));

/** Per query, every system's mean req/s, its p50/p99 and each round's figure (the spread). */
function summarize(rows: Row[], rss: { gatewayRss: number; workerRss: number; twoWorkersRss: number }): BenchResults {
  const figures = (query: Row['query']) => {
    const out: Record<string, number | number[]> = {};
    for (const system of new Set(rows.filter((r) => r.query === query).map((r) => r.system))) {
      const of = rows.filter((r) => r.query === query && r.system === system);
      const key = system.replace(/ \(reads only\)$/, '').replace(/-/g, '_');
      out[key] = mean(of.map((r) => r.rps));
      out[`${key}_p50_ms`] = mean(of.map((r) => r.p50));
      out[`${key}_p99_ms`] = mean(of.map((r) => r.p99));
      if (of.length > 1) out[`${key}_runs`] = of.map((r) => r.rps);
    }
    return out;
  };
  const mix: Record<string, { rps: number; p50_ms: number; p99_ms: number; reads_only: boolean }> = {};
  for (const r of rows.filter((x) => x.query === 'mix')) {
    const readsOnly = r.system.endsWith('(reads only)');
    const key = r.system.replace(/ \(reads only\)$/, '').replace(/-/g, '_');
    mix[key] = { rps: r.rps, p50_ms: r.p50, p99_ms: r.p99, reads_only: readsOnly };
  }
  return {
    q1: figures('q1') as BenchResults['q1'],
    q2: figures('q2') as BenchResults['q2'],
    m1: {
      ridedb: Number(figures('m1').ridedb),
      ridedb_p99_ms: Number(figures('m1').ridedb_p99_ms),
      ridedb_runs: figures('m1').ridedb_runs as number[] | undefined,
      at_256: figures('m1_256'),
    },
    mix,
    catchup_entries_per_s: readCatchup(),
    gateway_rss_mb: rss.gatewayRss,
    worker_rss_mb: rss.workerRss,
    gateway_plus_two_workers_rss_mb: rss.gatewayRss + rss.twoWorkersRss,
  };
}

/** Catch-up is measured by `npm run bench:catchup`; its last figure is carried over. */
function readCatchup(): number | null {
  const file = path.join(ROOT, 'bench/catchup-results.json');
  if (!fs.existsSync(file)) return null;
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { runs: Array<{ mode?: string; entries: number; entries_per_s: number }> };
  const replays = parsed.runs.filter((r) => (r.mode ?? 'log') === 'log').sort((a, b) => b.entries - a.entries);
  return replays[0]?.entries_per_s ?? null;
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
