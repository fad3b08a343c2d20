import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { domainChecksums, PASSWORD, sleep, TestCluster, waitUntil } from './cluster';

/**
 * The chaos run behind `npm run chaos` and test/chaos.test.ts: concurrent clients write
 * and read their own writes while a schedule injects faults; afterwards it checks the
 * history. Violations: an acknowledged write missing or changed, a write applied twice, a
 * read that missed its client's acknowledged write, replicas that differ.
 */
export type FaultKind = 'master' | 'slave' | 'rabbitmq' | 'zookeeper' | 'gateway';
export const FAULT_KINDS: FaultKind[] = ['master', 'slave', 'rabbitmq', 'zookeeper', 'gateway'];

export interface ChaosOptions {
  seconds: number;
  faultEverySeconds: number;
  faults: FaultKind[];
  clients: number;
  log?: (line: string) => void;
}

export interface ChaosSummary {
  writesAcknowledged: number;
  writesFailed: number;
  readsOk: number;
  readsUnavailable: number;
  faults: Record<string, number>;
  violations: string[];
}

const CREATE = 'mutation($ts: DateTimeISO!) { createRide(createdBy: "chaos", timestamp: $ts, source: 9, destination: 10) { id timestamp } }';
const READ = 'query($id: Int!) { ride(id: $id) { id timestamp } }';

function restartZooKeeper(): void {
  execFileSync('/usr/share/zookeeper/bin/zkServer.sh', ['restart'], { stdio: 'ignore', timeout: 60_000 });
}

function bounceRabbitMq(): void {
  execFileSync('rabbitmqctl', ['-q', 'stop_app'], { stdio: 'ignore', timeout: 120_000 });
  execFileSync('rabbitmqctl', ['-q', 'start_app'], { stdio: 'ignore', timeout: 120_000 });
}

export async function runChaos(options: ChaosOptions): Promise<ChaosSummary> {
  const log = options.log ?? (() => {});
  const cluster = await TestCluster.start({ LOG_LEVEL: 'warn' });
  const summary: ChaosSummary = { writesAcknowledged: 0, writesFailed: 0, readsOk: 0, readsUnavailable: 0, faults: {}, violations: [] };
  const acknowledged = new Map<number, string>();
  try {
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'chaos', p: PASSWORD });
    const stopAt = Date.now() + options.seconds * 1000;
    let n = 0;
    const client = async () => {
      while (Date.now() < stopAt) {
        // Each attempt has its own timestamp: a write applied twice would repeat one.
        const ts = new Date(Date.UTC(2036, 0, 1) + n++ * 1000).toISOString();
        const w = await cluster.gql<{ createRide: { id: number; timestamp: string } }>(CREATE, { ts }).catch(() => null);
        if (!w?.data?.createRide) {
          summary.writesFailed++;
          await sleep(50);
          continue;
        }
        summary.writesAcknowledged++;
        acknowledged.set(w.data.createRide.id, ts);
        const seq = w.headers.get('x-dbaas-seq') ?? '0';
        const r = await cluster.gql<{ ride: { id: number; timestamp: string } | null }>(READ, { id: w.data.createRide.id }, { 'x-dbaas-min-seq': seq }).catch(() => null);
        if (!r || r.errors?.length) summary.readsUnavailable++;
        else if (r.data?.ride?.timestamp !== ts) summary.violations.push(`read-your-writes: ride ${w.data.createRide.id} (seq ${seq}) read back as ${JSON.stringify(r.data?.ride)}`);
        else summary.readsOk++;
      }
    };
    const faults = async () => {
      for (let i = 0; Date.now() + options.faultEverySeconds * 1000 < stopAt; i++) {
        await sleep(options.faultEverySeconds * 1000);
        const kind = options.faults[i % options.faults.length];
        log(`fault ${i + 1}: ${kind}`);
        try {
          if (kind === 'master') await cluster.admin('mutation { crashMaster { id } }');
          if (kind === 'slave') await cluster.admin('mutation { crashSlave { id } }');
          if (kind === 'rabbitmq') bounceRabbitMq();
          if (kind === 'zookeeper') restartZooKeeper();
          if (kind === 'gateway') await cluster.crashAndRestartGateway();
          summary.faults[kind] = (summary.faults[kind] ?? 0) + 1;
        } catch (err) {
          summary.violations.push(`fault ${kind} could not be injected: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all([...Array.from({ length: options.clients }, client), faults()]);

    log('checking the history');
    await cluster.waitHealthy(120_000);
    const { rides } = await cluster.data<{ rides: Array<{ id: number; timestamp: string }> }>('{ rides(source: 9, destination: 10, upcomingOnly: false) { id timestamp } }');
    const stored = new Map(rides.map((r) => [r.id, r.timestamp]));
    for (const [id, ts] of acknowledged) if (stored.get(id) !== ts) summary.violations.push(`lost: acknowledged ride ${id} (${ts}) is ${stored.has(id) ? `now ${stored.get(id)}` : 'missing'}`);
    const seen = new Map<string, number>();
    for (const r of rides) seen.set(r.timestamp, (seen.get(r.timestamp) ?? 0) + 1);
    for (const [ts, count] of seen) if (count > 1) summary.violations.push(`applied twice: ${count} rides with timestamp ${ts}`);
    try {
      await waitUntil(
        'identical replicas',
        async () => {
          const workers = await cluster.workers();
          if (workers.some((w) => w.role === 'STARTING')) return false;
          const sums = await Promise.all(workers.map((w) => domainChecksums(cluster.workerDatabaseUrl(w.id))));
          return sums.every((s) => JSON.stringify(s) === JSON.stringify(sums[0]));
        },
        120_000,
      );
    } catch (err) {
      summary.violations.push(`replicas differ: ${(err as Error).message}`);
    }
  } finally {
    await cluster.stop();
  }
  return summary;
}

export function formatSummary(s: ChaosSummary): string {
  return [
    `operations: ${s.writesAcknowledged} writes acknowledged, ${s.writesFailed} writes failed (unavailable), ${s.readsOk} reads of own writes ok, ${s.readsUnavailable} reads unavailable`,
    `faults: ${Object.entries(s.faults).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'}`,
    `violations: ${s.violations.length}`,
    ...s.violations.map((v) => `  - ${v}`),
  ].join('\n');
}

if (require.main === module) {
  const faults = (process.env.CHAOS_FAULTS ?? FAULT_KINDS.join(',')).split(',') as FaultKind[];
  const options: ChaosOptions = {
    seconds: Number(process.env.CHAOS_SECONDS ?? 120),
    faultEverySeconds: Number(process.env.CHAOS_FAULT_EVERY ?? 8),
    faults,
    clients: Number(process.env.CHAOS_CLIENTS ?? 4),
    log: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`),
  };
  process.stdout.write(`chaos: ${options.seconds} s, ${options.clients} clients, a fault every ${options.faultEverySeconds} s from [${faults.join(', ')}]\n`);
  runChaos(options)
    .then((summary) => {
      const text = formatSummary(summary);
      process.stdout.write(`${text}\n`);
      fs.writeFileSync('chaos-summary.json', JSON.stringify(summary, null, 2) + '\n');
      process.exit(summary.violations.length ? 1 : 0);
    })
    .catch((err: Error) => {
      process.stderr.write(`chaos failed: ${err.stack ?? err.message}\n`);
      process.exit(2);
    });
}
