import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createLogger } from '../platform';
import { RpcClient } from '../gateway/rpcClient';
import { NODE_PROCESS_ENV, WORKER_NODE_FLAGS } from '../gateway/nodeFlags';
import { TestCluster, waitUntil, WORKER_ENTRY, appliedSeqOf } from '../test/support/cluster';
import { peakRssMb, runPool } from './lib';

/**
 * `npm run bench:catchup`: how fast a brand-new worker reaches the head of the log, after
 * 10,000 and then 100,000 writes. Results in bench/catchup-results.json.
 */
const SIZES = (process.env.BENCH_CATCHUP_SIZES ?? '10000,100000').split(',').map(Number);
const ROOT = path.resolve(__dirname, '../..');

const appliedSeq = appliedSeqOf;

interface Run {
  mode: 'log' | 'snapshot';
  entries: number;
  seconds: number;
  entries_per_s: number;
  peak_rss_mb: number;
}

/** Writes up to `sizes` entries into a fresh cluster and times a new worker after each. */
async function measure(mode: Run['mode'], sizes: number[], env: Record<string, string>): Promise<Run[]> {
  const cluster = await TestCluster.start({ LOG_LEVEL: 'warn', ...env });
  const rpc = await RpcClient.connect(
    cluster.config.amqpUrl,
    cluster.names,
    `catchup${process.pid}`,
    { ...cluster.config, readTimeoutMs: 30_000, writeTimeoutMs: 60_000 },
    createLogger('warn', {}),
  );
  const runs: Run[] = [];
  try {
    await rpc.write('createUser', { username: 'catchup', passwordHash: 'bench-not-a-real-hash' });
    let written = 1;
    for (const size of sizes) {
      await runPool(`writing up to ${size}`, size - written, 128, async (i) => {
        await rpc.write('createRide', {
          createdBy: 'catchup',
          timestamp: new Date(Date.UTC(2030, 0, 1) + (written + i) * 1000).toISOString(),
          source: 1 + (i % 10),
          destination: 1 + ((i + 1) % 10),
        });
      });
      written = size;
      const head = await appliedSeq(cluster.workerDatabaseUrl((await cluster.master()).id));
      const workerId = `${mode}_${size}`;
      const started = performance.now();
      const child = spawn(process.execPath, [...WORKER_NODE_FLAGS, WORKER_ENTRY], {
        env: { ...NODE_PROCESS_ENV, ...cluster.workerEnv(workerId), LOG_LEVEL: 'warn' },
        stdio: 'inherit',
      });
      let peak = 0;
      try {
        await waitUntil(`worker ${workerId} at seq ${head}`, async () => (await appliedSeq(cluster.workerDatabaseUrl(workerId))) >= head, 600_000);
        peak = peakRssMb(child.pid!);
      } finally {
        child.kill('SIGTERM');
      }
      const seconds = (performance.now() - started) / 1000;
      runs.push({ mode, entries: head, seconds: Number(seconds.toFixed(2)), entries_per_s: Math.round(head / seconds), peak_rss_mb: peak });
      process.stdout.write(
        `  ${mode}: ${head} entries, caught up in ${seconds.toFixed(2)} s (${Math.round(head / seconds)} entries/s, including process start and migrations), peak RSS ${peak} MB\n`,
      );
    }
  } finally {
    await rpc.close();
    await cluster.stop();
  }
  return runs;
}

async function main(): Promise<void> {
  process.stdout.write('replaying the log:\n');
  const runs = await measure('log', SIZES, {});
  // A 1 MB log: a new worker cannot replay 100k writes and loads a peer's snapshot instead.
  process.stdout.write('bootstrapping from a snapshot (log retention 1 MB):\n');
  runs.push(...(await measure('snapshot', [Math.max(...SIZES)], { LOG_RETENTION_BYTES: String(2 ** 20) })));
  fs.writeFileSync(path.join(ROOT, 'bench/catchup-results.json'), JSON.stringify({ measuredAt: new Date().toISOString(), runs }, null, 2) + '\n');
  process.stdout.write('written to bench/catchup-results.json\n');
}

main().catch((err: Error) => {
  process.stderr.write(`bench:catchup failed: ${err.message}\n`);
  process.exit(1);
});
