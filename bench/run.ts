import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { TestCluster, waitUntil } from '../test/support/cluster';
import { load, peakRssMb, startServer, type LoadResult } from './lib';
import { writeReport, type BenchResults, type Row } from './report';
import { copyToBaseline, dropBaseline, ROUTE_COUNT, routeOf, SEED, seedThroughRidedb } from './seed';

/**
 * `npm run bench`: ridedb against the baseline (Apollo + type-graphql + pg, same schema)
 * and PostGraphile, on one machine, interleaved. Writes bench/results.json and
 * BENCHMARKS.md (with bench/chart.svg).
 */
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const SLAVE_COUNTS = (process.env.BENCH_SLAVES ?? '1,2,4').split(',').map(Number);
const ROOT = path.resolve(__dirname, '../..');

const pick = <T>(xs: readonly T[]) => xs[Math.floor(Math.random() * xs.length)];
const randomRoute = () => routeOf(Math.floor(Math.random() * ROUTE_COUNT));

interface System {
  name: string;
  url: string;
  q1: () => string;
  q2: () => string;
}

const request = (query: string, variables: Record<string, unknown>) => JSON.stringify({ query, variables });

// Queries take variables, as a well-behaved client sends them.
const Q1 = 'query($s: Int!, $d: Int!) { rides(source: $s, destination: $d) { id timestamp createdBy { username } riders { username } } }';
const Q2 = 'query($id: Int!) { ride(id: $id) { id timestamp createdBy { username createdAt } source { name } destination { name } riders { username createdAt } } }';
const PG_Q1 =
  'query($s: Int!, $d: Int!) { upcomingRides(source: $s, destination: $d) { nodes { id ts userByCreatedBy { username } rideRidersByRideId { nodes { userByUsername { username } } } } } }';
const PG_Q2 =
  'query($id: BigInt!) { rideById(id: $id) { id ts userByCreatedBy { username createdAt } areaBySource { name } areaByDestination { name } rideRidersByRideId { nodes { userByUsername { username createdAt } } } } }';

function graphqlSystem(name: string, url: string, rideIds: number[]): System {
  return {
    name,
    url,
    q1: () => {
      const [s, d] = randomRoute();
      return request(Q1, { s, d });
    },
    q2: () => request(Q2, { id: pick(rideIds) }),
  };
}

function postgraphileSystem(url: string, rideIds: number[]): System {
  return {
    name: 'postgraphile',
    url,
    q1: () => {
      const [s, d] = randomRoute();
      return request(PG_Q1, { s, d });
    },
    q2: () => request(PG_Q2, { id: String(pick(rideIds)) }),
  };
}

/** Fails the run unless a system answers both queries with data and no errors. */
async function check(system: System): Promise<void> {
  for (const q of [system.q1, system.q2]) {
    const res = await fetch(system.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: q() });
    const json = (await res.json()) as { data?: unknown; errors?: unknown };
    if (json.errors || !json.data) throw new Error(`${system.name} answered ${JSON.stringify(json).slice(0, 300)}`);
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  // The write limit is off: the benchmark measures capacity from one address.
  const cluster = await TestCluster.start({ LOG_LEVEL: 'warn', MAX_SLAVES: String(Math.max(...SLAVE_COUNTS)), MUTATIONS_PER_MINUTE_PER_IP: '0' });
  const servers: ChildProcess[] = [];
  const baselineName = `${cluster.config.cluster}_baseline`;
  try {
    process.stdout.write(`seeding ${SEED.users} users, ${SEED.rides} rides through ridedb (cluster ${cluster.config.cluster})\n`);
    const { rideIds } = await seedThroughRidedb(cluster.config);
    const master = await cluster.master();
    const baselineDb = await copyToBaseline(cluster.workerDatabaseUrl(master.id), cluster.config.databaseUrl, baselineName);
    const basePort = cluster.config.port + 1;
    servers.push(await startServer(path.join(ROOT, 'dist/bench/baselineServer.js'), { DATABASE_URL: baselineDb, PORT: String(basePort) }, 'baseline ready'));
    servers.push(await startServer(path.join(ROOT, 'bench/postgraphile/server.js'), { DATABASE_URL: baselineDb, PORT: String(basePort + 1) }, 'postgraphile ready'));

    const ridedb = graphqlSystem('ridedb', `${cluster.url}/graphql`, rideIds);
    const baseline = graphqlSystem('baseline', `http://127.0.0.1:${basePort}/graphql`, rideIds);
    const postgraphile = postgraphileSystem(`http://127.0.0.1:${basePort + 1}/graphql`, rideIds);
    for (const s of [ridedb, baseline, postgraphile]) await check(s);

    const rows: Row[] = [];
    const measure = async (system: string, query: 'q1' | 'q2' | 'm1', url: string, make: () => string): Promise<LoadResult> => {
      const r = await load(url, make, CONNECTIONS, SECONDS);
      process.stdout.write(`  ${system.padEnd(16)} ${query}  ${String(r.rps).padStart(6)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms${r.errors ? `  ERRORS ${r.errors}` : ''}\n`);
      if (r.errors) throw new Error(`${system} ${query}: ${r.errors} failed requests`);
      rows.push({ system, query, ...r });
      return r;
    };

    // Interleaved: each ridedb size is followed by the two others, so noise hits all alike.
    for (const slaves of SLAVE_COUNTS) {
      await cluster.admin(`mutation { scaleSlaves(count: ${slaves}) { desiredSlaves } }`);
      await waitUntil(`${slaves} serving slaves`, async () => (await cluster.workers()).filter((w) => w.role === 'SLAVE').length === slaves, 120_000);
      process.stdout.write(`reads at ${CONNECTIONS} connections, ${SECONDS} s each (ridedb with ${slaves} slave${slaves > 1 ? 's' : ''})\n`);
      for (const q of ['q1', 'q2'] as const) {
        await measure(`ridedb-${slaves}-slave`, q, ridedb.url, ridedb[q]);
        await measure('baseline', q, baseline.url, baseline[q]);
        await measure('postgraphile', q, postgraphile.url, postgraphile[q]);
      }
    }

    await cluster.admin('mutation { scaleSlaves(count: 1) { desiredSlaves } }');
    await waitUntil('1 slave', async () => (await cluster.workers()).filter((w) => w.role === 'SLAVE').length === 1, 60_000);
    process.stdout.write('writes (createRide)\n');
    let n = 0;
    await measure('ridedb-1-slave', 'm1', ridedb.url, () =>
      JSON.stringify({
        query: 'mutation($by: String!, $ts: DateTimeISO!, $s: Int!, $d: Int!) { createRide(createdBy: $by, timestamp: $ts, source: $s, destination: $d) { id } }',
        variables: { by: `user${String(n++ % SEED.users).padStart(5, '0')}`, ts: new Date(Date.now() + 86_400_000).toISOString(), s: 1, d: 2 },
      }),
    );

    const workers = await cluster.workers();
    const results: BenchResults = summarize(rows, {
      gatewayRss: peakRssMb(cluster.gateway.pid!),
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
      minutes: (Date.now() - started) / 60_000,
    });
    process.stdout.write(`\nwrote bench/results.json and BENCHMARKS.md in ${((Date.now() - started) / 60_000).toFixed(1)} min\n`);
  } finally {
    for (const s of servers) s.kill('SIGTERM');
    await cluster.stop();
    await dropBaseline(cluster.config.databaseUrl, baselineName);
  }
}

function mean(xs: number[]): number {
  return Math.round(xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length));
}

function summarize(rows: Row[], rss: { gatewayRss: number; workerRss: number; twoWorkersRss: number }): BenchResults {
  const of = (system: string, query: string, key: 'rps' | 'p99') => mean(rows.filter((r) => r.system === system && r.query === query).map((r) => r[key]));
  const read = (q: 'q1' | 'q2') => ({
    ridedb: of('ridedb-1-slave', q, 'rps'),
    baseline: of('baseline', q, 'rps'),
    postgraphile: of('postgraphile', q, 'rps'),
    ridedb_p99_ms: of('ridedb-1-slave', q, 'p99'),
  });
  return {
    q1: read('q1'),
    q2: read('q2'),
    m1: { ridedb: of('ridedb-1-slave', 'm1', 'rps'), ridedb_p99_ms: of('ridedb-1-slave', 'm1', 'p99') },
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
