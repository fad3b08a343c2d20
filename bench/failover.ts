import fs from 'node:fs';
import path from 'node:path';
import { PASSWORD, sleep, TestCluster, waitUntil } from '../test/support/cluster';
import { postmasterPid } from '../test/support/workerStorage';

/**
 * `npm run bench:failover`: faults under a steady write load, each measured from the
 * fault to the moment the cluster has healed it, with every acknowledged write checked
 * afterwards (lost: acknowledged but not stored; duplicates: stored twice):
 * - crash: SIGKILL the master (per runtime) → the first write acknowledged by a new master;
 * - hang: SIGSTOP the master (per runtime) → the first write acknowledged by a new master
 *   (the orchestrator fences the old one once its heartbeat has stopped for HUNG_WORKER_MS);
 * - postgres: SIGKILL the master's own PostgreSQL (WORKER_STORAGE=dedicated) → the first
 *   write acknowledged by a new master;
 * - gateway: SIGKILL the orchestrating gateway of two, then crash the master through the
 *   other → two serving workers again, a master among them (orchestration taken over).
 * Results go to stdout and bench/failover-results.json.
 */
const CRASHES = Number(process.env.BENCH_CRASHES ?? 7);
const HANGS = Number(process.env.BENCH_HANGS ?? 5);
const WRITERS = Number(process.env.BENCH_WRITERS ?? 2);
const SCENARIOS = (process.env.BENCH_SCENARIOS ?? 'crash:process,crash:docker,hang:process,hang:docker,postgres:process,gateway:process').split(',');

interface Ack {
  at: number;
  workerId: string;
  id: number;
  timestamp: string;
}

interface Outcome {
  faults: number;
  min_ms: number;
  median_ms: number;
  max_ms: number;
  acknowledged: number;
  lost: number;
  duplicates: number;
}

/** Steady writers through one gateway (`retarget` moves them), recording every acknowledged ride. */
function startWriters(initial: TestCluster, year: number) {
  let cluster = initial;
  const acks: Ack[] = [];
  let running = true;
  let n = 0;
  const writer = async () => {
    while (running) {
      const ts = new Date(Date.UTC(year, 0, 1) + n++ * 1000).toISOString();
      const res = await cluster
        .gql<{ createRide: { id: number; timestamp: string } }>(
          'mutation($ts: DateTimeISO!) { createRide(createdBy: "bench", timestamp: $ts, source: 1, destination: 2) { id timestamp } }',
          { ts },
        )
        .catch((err: Error) => ({ errors: [{ message: err.message }], extensions: undefined, data: null }));
      const workerId = res.extensions?.dbaas?.workerId;
      if (!res.errors && workerId && res.data) acks.push({ at: performance.now(), workerId, ...res.data.createRide });
    }
  };
  const writers = Array.from({ length: WRITERS }, writer);
  return {
    acks,
    retarget(to: TestCluster) {
      cluster = to;
    },
    async stop() {
      running = false;
      await Promise.all(writers);
    },
    /** The first write acknowledged after `since` by a worker other than `notBy`. */
    async nextAck(since: number, notBy: string, what: string): Promise<number> {
      const ack = await waitUntil(what, async () => acks.find((a) => a.at > since && a.workerId !== notBy), 60_000);
      return ack.at - since;
    },
  };
}

/** Acknowledged rides missing from the data, and rides stored twice. */
async function audit(cluster: TestCluster, acks: Ack[]): Promise<{ lost: number; duplicates: number }> {
  const rides = await cluster.allRides(1, 2, false);
  const stored = new Map(rides.map((r) => [r.id, r.timestamp]));
  return { lost: acks.filter((a) => stored.get(a.id) !== a.timestamp).length, duplicates: rides.length - new Set(rides.map((r) => r.timestamp)).size };
}

async function scenario(kind: string, runtime: string): Promise<{ times: number[]; acks: Ack[]; lost: number; duplicates: number }> {
  const env: Record<string, string> = { WORKER_RUNTIME: runtime, LOG_LEVEL: 'warn' };
  if (kind === 'postgres') env.WORKER_STORAGE = 'dedicated';
  const cluster = await TestCluster.start(env);
  // In start order, which is the order of the gateways' election: [i] orchestrates in round i.
  const gateways = [cluster];
  try {
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'bench', p: PASSWORD });
    if (kind === 'gateway') gateways.push(await cluster.addGateway());
    let through = gateways[gateways.length - 1];
    const writers = startWriters(through, 2040);
    const times: number[] = [];
    const rounds = kind === 'crash' ? CRASHES : HANGS;
    for (let i = 0; i < rounds; i++) {
      await sleep(1500);
      await through.waitHealthy();
      const master = await through.master();
      const at = performance.now();
      let ms: number;
      if (kind === 'crash') {
        await through.admin('mutation { crashMaster { id } }');
        ms = await writers.nextAck(at, master.id, 'a write acknowledged by a new master');
      } else if (kind === 'hang') {
        process.kill(master.pid, 'SIGSTOP');
        ms = await writers.nextAck(at, master.id, 'a write acknowledged by a new master');
      } else if (kind === 'postgres') {
        process.kill(postmasterPid(cluster.config, master.id), 'SIGKILL');
        ms = await writers.nextAck(at, master.id, 'a write acknowledged by a new master');
      } else {
        // The orchestrator (gateway i) dies; gateway i+1, which the writers use, takes over.
        gateways[i].gateway.kill('SIGKILL');
        await through.admin('mutation { crashMaster { id } }');
        await waitUntil(
          'the crashed master replaced',
          async () => {
            const ws = await through.workers();
            return ws.length === 2 && !ws.some((w) => w.pid === master.pid) && ws.some((w) => w.role === 'MASTER') && ws.every((w) => w.role !== 'STARTING');
          },
          60_000,
        );
        ms = performance.now() - at;
        gateways.push(await through.addGateway());
        through = gateways[gateways.length - 1];
        writers.retarget(through);
      }
      times.push(ms);
      process.stdout.write(`  ${kind}/${runtime} ${i + 1}/${rounds}: ${ms.toFixed(0)} ms\n`);
    }
    await writers.stop();
    await through.waitHealthy();
    return { times, acks: writers.acks, ...(await audit(through, writers.acks)) };
  } finally {
    for (const g of gateways.slice(1).reverse()) await g.stopGateway();
    await cluster.stop();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const summary: Record<string, Outcome> = {};
  for (const entry of SCENARIOS) {
    const [kind, runtime] = entry.split(':');
    process.stdout.write(`${kind} under write load, runtime=${runtime}, ${WRITERS} writers\n`);
    const r = await scenario(kind, runtime);
    summary[entry] = {
      faults: r.times.length,
      min_ms: Math.round(Math.min(...r.times)),
      median_ms: Math.round(median(r.times)),
      max_ms: Math.round(Math.max(...r.times)),
      acknowledged: r.acks.length,
      lost: r.lost,
      duplicates: r.duplicates,
    };
  }
  process.stdout.write('\nscenario          faults   min ms   median ms   max ms   acknowledged   lost   duplicates\n');
  for (const [name, s] of Object.entries(summary)) {
    process.stdout.write(
      `${name.padEnd(17)} ${String(s.faults).padStart(6)} ${String(s.min_ms).padStart(8)} ${String(s.median_ms).padStart(11)} ${String(s.max_ms).padStart(8)} ${String(s.acknowledged).padStart(14)} ${String(s.lost).padStart(6)} ${String(s.duplicates).padStart(12)}\n`,
    );
  }
  const out = path.resolve(__dirname, '../../bench/failover-results.json');
  fs.writeFileSync(out, JSON.stringify({ measuredAt: new Date().toISOString(), writers: WRITERS, results: summary }, null, 2) + '\n');
  process.stdout.write(`\nwritten to ${path.relative(process.cwd(), out)}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`bench:failover failed: ${err.message}\n`);
  process.exit(1);
});
