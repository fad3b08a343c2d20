import fs from 'node:fs';
import path from 'node:path';
import { PASSWORD, sleep, TestCluster } from '../test/support/cluster';

/**
 * `npm run bench:failover`: crash the master N times under a steady write load and
 * measure, per runtime, the time from the crash to the first write acknowledged by the
 * new master. Results go to stdout and bench/failover-results.json.
 */
const CRASHES = Number(process.env.BENCH_CRASHES ?? 7);
const WRITERS = Number(process.env.BENCH_WRITERS ?? 2);
const RUNTIMES = (process.env.BENCH_RUNTIMES ?? 'process,docker').split(',');

interface Ack {
  at: number;
  workerId: string;
}

async function measure(runtime: string): Promise<number[]> {
  const cluster = await TestCluster.start({ WORKER_RUNTIME: runtime, LOG_LEVEL: 'warn' });
  try {
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'bench', p: PASSWORD });
    const acks: Ack[] = [];
    let running = true;
    let n = 0;
    const writer = async () => {
      while (running) {
        const ts = new Date(Date.UTC(2035, 0, 1) + n++ * 1000).toISOString();
        const res = await cluster
          .gql('mutation($ts: DateTimeISO!) { createRide(createdBy: "bench", timestamp: $ts, source: 1, destination: 2) { id } }', { ts })
          .catch((err: Error) => ({ errors: [{ message: err.message }], extensions: undefined }));
        const workerId = res.extensions?.dbaas?.workerId;
        if (!res.errors && workerId) acks.push({ at: performance.now(), workerId });
      }
    };
    const writers = Array.from({ length: WRITERS }, writer);
    const results: number[] = [];
    for (let i = 0; i < CRASHES; i++) {
      await sleep(1500);
      await cluster.waitHealthy();
      const master = await cluster.master();
      const crashedAt = performance.now();
      await cluster.admin('mutation { crashMaster { id } }');
      const deadline = Date.now() + 30_000;
      let next: Ack | undefined;
      while (!next && Date.now() < deadline) {
        next = acks.find((a) => a.at > crashedAt && a.workerId !== master.id);
        if (!next) await sleep(5);
      }
      if (!next) throw new Error(`${runtime}: no write acknowledged within 30 s of crash ${i + 1}`);
      results.push(next.at - crashedAt);
      process.stdout.write(`  ${runtime} crash ${i + 1}/${CRASHES}: next acknowledged write after ${(next.at - crashedAt).toFixed(0)} ms\n`);
    }
    running = false;
    await Promise.all(writers);
    return results;
  } finally {
    await cluster.stop();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const summary: Record<string, { crashes: number; min_ms: number; median_ms: number; max_ms: number }> = {};
  for (const runtime of RUNTIMES) {
    process.stdout.write(`failover under write load, runtime=${runtime}, ${CRASHES} crashes, ${WRITERS} writers\n`);
    const xs = await measure(runtime);
    summary[runtime] = { crashes: xs.length, min_ms: Math.round(Math.min(...xs)), median_ms: Math.round(median(xs)), max_ms: Math.round(Math.max(...xs)) };
  }
  process.stdout.write('\nruntime   crashes   min ms   median ms   max ms\n');
  for (const [rt, s] of Object.entries(summary)) {
    process.stdout.write(`${rt.padEnd(9)} ${String(s.crashes).padStart(7)} ${String(s.min_ms).padStart(8)} ${String(s.median_ms).padStart(11)} ${String(s.max_ms).padStart(8)}\n`);
  }
  const out = path.resolve(__dirname, '../../bench/failover-results.json');
  fs.writeFileSync(out, JSON.stringify({ measuredAt: new Date().toISOString(), crashes: CRASHES, writers: WRITERS, results: summary }, null, 2) + '\n');
  process.stdout.write(`\nwritten to ${path.relative(process.cwd(), out)}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`bench:failover failed: ${err.message}\n`);
  process.exit(1);
});
