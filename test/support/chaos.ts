import fs from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { domainChecksums, PASSWORD, sleep, TestCluster, waitUntil } from './cluster';
import { PrivateRabbitmq } from './privateRabbitmq';
import { PrivateZookeeper, settleAll } from './privateZookeeper';

/**
 * The chaos run behind `npm run chaos` and test/chaos.test.ts: concurrent clients write
 * and read their own writes while a schedule injects faults; afterwards it checks the
 * history. Violations: an acknowledged write missing or changed, a write applied twice, a
 * read that missed its client's acknowledged write, replicas that differ.
 *
 * The cluster runs on a RabbitMQ and a ZooKeeper of the run's own (started here, removed
 * at the end, also on failure or Ctrl-C), so the `rabbitmq` and `zookeeper` faults never
 * touch the services other clusters on the machine share. Its workers' databases are on
 * the shared PostgreSQL, which no fault touches.
 */
export type FaultKind = 'master' | 'slave' | 'rabbitmq' | 'zookeeper' | 'gateway';
export const FAULT_KINDS: FaultKind[] = ['master', 'slave', 'rabbitmq', 'zookeeper', 'gateway'];

export interface ChaosOptions {
  /** How long clients write and read; the run goes on past it until every kind in `faults` has been injected once. */
  seconds: number;
  faultEverySeconds: number;
  faults: FaultKind[];
  clients: number;
  log?: (line: string) => void;
  /** Ends the run early (Ctrl-C): the clients and faults stop, the cluster and the private services are removed, and runChaos rejects. */
  signal?: AbortSignal;
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

export async function runChaos(options: ChaosOptions): Promise<ChaosSummary> {
  const log = options.log ?? (() => {});
  const rabbitmq = await PrivateRabbitmq.prepare();
  const zookeeper = await PrivateZookeeper.prepare();
  let cluster: TestCluster | undefined;
  try {
    log(`private RabbitMQ ${rabbitmq.node} on port ${rabbitmq.port}, private ZooKeeper on ${zookeeper.hosts}`);
    await settleAll([rabbitmq.start(), zookeeper.start()]);
    if (options.signal?.aborted) throw new Error('interrupted');
    cluster = await TestCluster.start({ LOG_LEVEL: 'warn', AMQP_URL: rabbitmq.url, ZK_HOSTS: zookeeper.hosts });
    return await chaos(cluster, rabbitmq, zookeeper, options, log);
  } finally {
    try {
      if (cluster) {
        // A fault that failed half-way may have left one down; removing the namespace needs both.
        const note = (what: string) => (err: unknown) => log(`cleanup: ${what} did not restart: ${err instanceof Error ? err.message : String(err)}`);
        if (!(await rabbitmq.answers())) await rabbitmq.startApp().catch(note('the private broker'));
        if (!(await zookeeper.answers())) await zookeeper.start().catch(note('the private ZooKeeper'));
        await cluster.stop();
      }
    } finally {
      await settleAll([rabbitmq.remove(), zookeeper.remove()]);
    }
  }
}

async function chaos(cluster: TestCluster, rabbitmq: PrivateRabbitmq, zookeeper: PrivateZookeeper, options: ChaosOptions, log: (line: string) => void): Promise<ChaosSummary> {
  const summary: ChaosSummary = { writesAcknowledged: 0, writesFailed: 0, readsOk: 0, readsUnavailable: 0, faults: {}, violations: [] };
  const acknowledged = new Map<number, string>();
  await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'chaos', p: PASSWORD });
  const stopAt = Date.now() + options.seconds * 1000;
  const over = (margin = 0) => Date.now() + margin >= stopAt || options.signal?.aborted;
  // On a loaded machine a broker or ZooKeeper restart can take most of a short run: the
  // schedule finishes its first round whatever the time, and clients run until it has.
  let faultsDone = false;
  let n = 0;
  const client = async () => {
    while (!(faultsDone && over()) && !options.signal?.aborted) {
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
    for (let i = 0; (i < options.faults.length || !over(options.faultEverySeconds * 1000)) && !options.signal?.aborted; i++) {
      // Rejects only when the run is aborted, which the next line handles.
      await delay(options.faultEverySeconds * 1000, undefined, { signal: options.signal }).catch(() => undefined);
      if (options.signal?.aborted) break;
      const kind = options.faults[i % options.faults.length];
      log(`fault ${i + 1}: ${kind}`);
      const began = Date.now();
      try {
        if (kind === 'master') await cluster.admin('mutation { crashMaster { id } }');
        if (kind === 'slave') await cluster.admin('mutation { crashSlave { id } }');
        if (kind === 'rabbitmq') await rabbitmq.bounce();
        if (kind === 'zookeeper') await zookeeper.restart();
        if (kind === 'gateway') await cluster.crashAndRestartGateway();
        summary.faults[kind] = (summary.faults[kind] ?? 0) + 1;
        log(`fault ${i + 1}: ${kind} injected and over in ${Date.now() - began} ms`);
      } catch (err) {
        summary.violations.push(`fault ${kind} could not be injected: ${(err as Error).message}`);
      }
    }
    faultsDone = true;
  };
  await Promise.all([...Array.from({ length: options.clients }, client), faults()]);
  if (options.signal?.aborted) throw new Error('interrupted');

  log('checking the history');
  await cluster.waitHealthy(120_000);
  const rides = await cluster.allRides(9, 10, false);
  const stored = new Map(rides.map((r) => [r.id, r.timestamp]));
  for (const [id, ts] of acknowledged)
    if (stored.get(id) !== ts) summary.violations.push(`lost: acknowledged ride ${id} (${ts}) is ${stored.has(id) ? `now ${stored.get(id)}` : 'missing'}`);
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
  return summary;
}

export function formatSummary(s: ChaosSummary): string {
  return [
    `operations: ${s.writesAcknowledged} writes acknowledged, ${s.writesFailed} writes failed (unavailable), ${s.readsOk} reads of own writes ok, ${s.readsUnavailable} reads unavailable`,
    `faults: ${
      Object.entries(s.faults)
        .map(([k, v]) => `${k} ×${v}`)
        .join(', ') || 'none'
    }`,
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
  // The private RabbitMQ and ZooKeeper run in sessions of their own, out of a Ctrl-C's
  // reach: a first SIGINT or SIGTERM ends the run early, which removes them (and the
  // cluster) before exiting; a second one exits at once.
  const interrupt = new AbortController();
  options.signal = interrupt.signal;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`chaos: ${sig}: stopping the clients and faults, then the cluster, the private RabbitMQ and ZooKeeper\n`);
      interrupt.abort();
    });
  }
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
