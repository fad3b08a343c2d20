import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { RpcClient } from '../gateway/rpcClient';
import { createLogger } from '../platform';
import { PASSWORD, TestCluster, waitUntil } from '../test/support/cluster';
import { cpuMs, peakRssMb } from './lib';
import { spliceIntoBenchmarks } from './report';

/**
 * `npm run bench:live`: live ride subscriptions fed by the log, against the way peers do
 * "live" (Hasura's live queries re-run a query per subscriber every second): for each
 * size, N subscribers over a few graphql-ws connections on ROUTES routes while writers
 * create rides at a steady rate, then the same N as pollers (a keyset query per subscriber
 * per POLL_MS, the cheapest polling there is). Reported per size and way: changes
 * delivered per second, delivery latency from the write's acknowledgement (p50/p99),
 * queries the cluster ran for it, the gateway's peak RSS, and whether every subscriber got
 * exactly its route's changes in seq order (lost, duplicated, out of order).
 */
const ROOT = path.resolve(__dirname, '../..');
const SIZES = (process.env.BENCH_LIVE_SUBSCRIBERS ?? '1000,10000').split(',').map(Number);
const WRITES_PER_S = Number(process.env.BENCH_LIVE_WRITES_PER_S ?? 500);
const SECONDS = Number(process.env.BENCH_LIVE_SECONDS ?? 15);
const PER_CONNECTION = 500;
const ROUTES = 200;
const POLL_MS = 1000;
/** Polling is measured up to this many subscribers: beyond, it only measures a saturated cluster longer. */
const MAX_POLLERS = Number(process.env.BENCH_LIVE_MAX_POLLERS ?? 1000);

const route = (j: number): [number, number] => [1 + (j % 198), 1 + ((j * 7 + 3) % 198) === 1 + (j % 198) ? 1 + ((1 + (j % 198)) % 198) : 1 + ((j * 7 + 3) % 198)];

interface WayResult {
  subscribers: number;
  changes_per_s: number;
  /** From the writer's acknowledgement. */
  p50_ms: number;
  p99_ms: number;
  /** From the moment the write was sent (includes the write itself). */
  p50_from_send_ms: number;
  p99_from_send_ms: number;
  reads_per_s: number;
  /** The gateway's CPU (user and system) per change delivered, from the first write until all were delivered: steadier than latency. */
  gateway_cpu_us_per_change: number;
  gateway_rss_mb: number;
  lost: number;
  duplicated: number;
  out_of_order: number;
}

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0);
const round = (n: number) => Math.round(n * 10) / 10;

/** Rides written so far: timestamps keep rising across runs, so a poller's keyset sees every new ride. */
let written = 0;

interface Acked {
  route: number;
  seq: number;
  sentAt: number;
  ackedAt: number;
}

/** Writes at a steady rate over the routes; every acknowledged write's route, seq, and when it was sent and acknowledged. */
async function writeSteadily(rpc: RpcClient, seconds: number, perSecond: number): Promise<Acked[]> {
  const acked: Acked[] = [];
  const inFlight: Array<Promise<void>> = [];
  const started = performance.now();
  let sent = 0;
  while (performance.now() - started < seconds * 1000) {
    const due = Math.floor(((performance.now() - started) / 1000) * perSecond);
    for (; sent < due; sent++) {
      const j = sent % ROUTES;
      const [source, destination] = route(j);
      const timestamp = new Date(Date.UTC(2050, 0, 1) + written++ * 1000).toISOString();
      const sentAt = performance.now();
      inFlight.push(
        rpc.write('createRide', { createdBy: 'live', timestamp, source, destination }).then((answer) => {
          acked.push({ route: j, seq: answer.seq, sentAt, ackedAt: performance.now() });
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(inFlight);
  return acked;
}

/** Changes all subscribers should receive: each write goes to every subscriber of its route. */
function expectedTotal(acked: Acked[], subscribers: number): number {
  const perRoute = new Map<number, number>();
  for (let i = 0; i < subscribers; i++) perRoute.set(i % ROUTES, (perRoute.get(i % ROUTES) ?? 0) + 1);
  return acked.reduce((n, a) => n + (perRoute.get(a.route) ?? 0), 0);
}

/** Lost, duplicated and out-of-order changes of one subscriber against what was written on its route. */
function check(expected: number[], got: number[]): { lost: number; duplicated: number; outOfOrder: number } {
  const want = new Set(expected);
  const seen = new Set<number>();
  let duplicated = 0;
  let outOfOrder = 0;
  for (let i = 0; i < got.length; i++) {
    if (seen.has(got[i])) duplicated++;
    seen.add(got[i]);
    if (i > 0 && got[i] <= got[i - 1]) outOfOrder++;
  }
  let lost = 0;
  for (const seq of want) if (!seen.has(seq)) lost++;
  return { lost, duplicated, outOfOrder };
}

async function live(cluster: TestCluster, rpc: RpcClient, subscribers: number, headSeq: number): Promise<WayResult> {
  const received: number[][] = Array.from({ length: subscribers }, () => []);
  const latencies: number[] = [];
  const fromSend: number[] = [];
  const deliveredAt = new Map<number, number[]>();
  const clients: Client[] = [];
  let subscribed = 0;
  for (let c = 0; c * PER_CONNECTION < subscribers; c++) {
    const client = createClient({ url: `${cluster.url.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
    clients.push(client);
    for (let i = c * PER_CONNECTION; i < Math.min(subscribers, (c + 1) * PER_CONNECTION); i++) {
      const [source, destination] = route(i % ROUTES);
      client.subscribe<{ rides: { seq: number } }>(
        {
          query: 'subscription($s: Int!, $d: Int!, $a: Int) { rides(source: $s, destination: $d, afterSeq: $a) { type seq } }',
          variables: { s: source, d: destination, a: headSeq },
        },
        {
          next: ({ data, errors }) => {
            if (errors) throw new Error(`subscriber ${i}: ${JSON.stringify(errors)}`);
            if (!data) return;
            received[i].push(data.rides.seq);
            const at = deliveredAt.get(data.rides.seq);
            if (at) at.push(performance.now());
            else deliveredAt.set(data.rides.seq, [performance.now()]);
          },
          error: (err) => process.stderr.write(`subscriber ${i} failed: ${err instanceof Error ? err.message : JSON.stringify(err)}\n`),
          complete: () => undefined,
        },
      );
      subscribed++;
    }
    // One connection's subscriptions attached before the next: a client fleet ramps up.
    await waitUntil(
      `${subscribed} subscriptions attached`,
      async () => {
        const text = await (await fetch(`${cluster.url}/metrics`)).text();
        return Number(/^ridedb_subscriptions_open (\d+)/m.exec(text)?.[1] ?? 0) >= subscribed;
      },
      120_000,
    );
  }
  const readsBefore = await readsServed(cluster);
  const cpuBefore = cpuMs(cluster.gateway.pid!);
  const started = performance.now();
  const acked = await writeSteadily(rpc, SECONDS, WRITES_PER_S);
  await waitUntil('every change delivered', async () => received.reduce((n, r) => n + r.length, 0) >= expectedTotal(acked, subscribers) || undefined, 60_000).catch(
    () => undefined,
  );
  for (const a of acked) {
    // A change often reaches its subscribers before its writer hears the acknowledgement
    // (the log is read as the master commits): 0 then.
    for (const at of deliveredAt.get(a.seq) ?? []) {
      latencies.push(Math.max(0, at - a.ackedAt));
      fromSend.push(at - a.sentAt);
    }
  }
  const byRoute = new Map<number, number[]>();
  for (const a of acked.sort((x, y) => x.seq - y.seq)) byRoute.set(a.route, [...(byRoute.get(a.route) ?? []), a.seq]);
  const expected = (i: number) => byRoute.get(i % ROUTES) ?? [];
  const elapsed = (performance.now() - started) / 1000;
  const cpu = cpuMs(cluster.gateway.pid!) - cpuBefore;
  const readsAfter = await readsServed(cluster);
  await Promise.all(clients.map((c) => Promise.resolve(c.dispose())));
  return summarise(cluster, received, expected, { latencies, fromSend, elapsed, reads: readsAfter - readsBefore, cpu });
}

/** The peers' way: every subscriber asks for its route's rides after the last it saw, every POLL_MS. */
async function polling(cluster: TestCluster, rpc: RpcClient, subscribers: number): Promise<WayResult> {
  const received: number[][] = Array.from({ length: subscribers }, () => []);
  const seenAt = new Map<string, number>();
  const cursors: Array<string | null> = Array.from({ length: subscribers }, () => null);
  let stop = false;
  const query = 'query($s: Int!, $d: Int!, $after: String) { rides(source: $s, destination: $d, first: 1000, after: $after) { id cursor } }';
  const poll = async (i: number) => {
    const [s, d] = route(i % ROUTES);
    // Random phases: evenly spaced ones fell in step with the writers' round over the routes.
    await new Promise((r) => setTimeout(r, Math.random() * POLL_MS));
    while (!stop) {
      const began = performance.now();
      const res = await fetch(`${cluster.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables: { s, d, after: cursors[i] } }),
      });
      const body = (await res.json()) as { data?: { rides: Array<{ id: number; cursor: string }> } };
      const now = performance.now();
      for (const ride of body.data?.rides ?? []) {
        received[i].push(ride.id);
        seenAt.set(`${i}:${ride.id}`, now);
        cursors[i] = ride.cursor;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, POLL_MS - (now - began))));
    }
  };
  // Each poller's cursor starts at its route's last ride.
  const tails = new Map<number, string | null>();
  for (let j = 0; j < ROUTES; j++) {
    const [s, d] = route(j);
    const rides = (await cluster.data<{ rides: Array<{ cursor: string }> }>(`{ rides(source: ${s}, destination: ${d}, first: 1000) { cursor } }`)).rides;
    tails.set(j, rides.length ? rides[rides.length - 1].cursor : null);
  }
  for (let i = 0; i < subscribers; i++) cursors[i] = tails.get(i % ROUTES) ?? null;
  const pollers = Array.from({ length: subscribers }, (_, i) => poll(i));
  await new Promise((r) => setTimeout(r, POLL_MS));
  const readsBefore = await readsServed(cluster);
  const cpuBefore = cpuMs(cluster.gateway.pid!);
  const started = performance.now();
  const acked = await writeSteadily(rpc, SECONDS, WRITES_PER_S);
  await new Promise((r) => setTimeout(r, 2 * POLL_MS));
  stop = true;
  await Promise.all(pollers);
  const elapsed = (performance.now() - started) / 1000;
  const cpu = cpuMs(cluster.gateway.pid!) - cpuBefore;
  const readsAfter = await readsServed(cluster);
  const byRoute = new Map<number, number[]>();
  const ackedAt = new Map(acked.map((a) => [a.seq, a.ackedAt]));
  for (const a of acked.sort((x, y) => x.seq - y.seq)) byRoute.set(a.route, [...(byRoute.get(a.route) ?? []), a.seq]);
  const latencies: number[] = [];
  const fromSend: number[] = [];
  const sentAt = new Map(acked.map((a) => [a.seq, a.sentAt]));
  for (let i = 0; i < subscribers; i++) {
    for (const id of received[i]) {
      const acked = ackedAt.get(id);
      const seen = seenAt.get(`${i}:${id}`);
      if (acked !== undefined && seen !== undefined) {
        latencies.push(Math.max(0, seen - acked));
        fromSend.push(seen - sentAt.get(id)!);
      }
    }
  }
  return summarise(cluster, received, (i) => byRoute.get(i % ROUTES) ?? [], { latencies, fromSend, elapsed, reads: readsAfter - readsBefore, cpu });
}

/** One way's figures: delivery rate, latencies, reads, the gateway's peak RSS, and every subscriber checked. */
function summarise(
  cluster: TestCluster,
  received: number[][],
  expected: (subscriber: number) => number[],
  m: { latencies: number[]; fromSend: number[]; elapsed: number; reads: number; cpu: number },
): WayResult {
  const sums = { lost: 0, duplicated: 0, outOfOrder: 0 };
  for (let i = 0; i < received.length; i++) {
    const c = check(expected(i), received[i]);
    sums.lost += c.lost;
    sums.duplicated += c.duplicated;
    sums.outOfOrder += c.outOfOrder;
  }
  const latencies = [...m.latencies].sort((a, b) => a - b);
  const fromSend = [...m.fromSend].sort((a, b) => a - b);
  const delivered = received.reduce((n, r) => n + r.length, 0);
  return {
    subscribers: received.length,
    changes_per_s: Math.round(delivered / m.elapsed),
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    p50_from_send_ms: round(percentile(fromSend, 50)),
    p99_from_send_ms: round(percentile(fromSend, 99)),
    reads_per_s: Math.round(m.reads / m.elapsed),
    gateway_cpu_us_per_change: round((m.cpu * 1000) / Math.max(delivered, 1)),
    gateway_rss_mb: peakRssMb(cluster.gateway.pid!),
    lost: sums.lost,
    duplicated: sums.duplicated,
    out_of_order: sums.outOfOrder,
  };
}

/** Reads the gateway sent to workers so far (its RPC histogram's count). */
async function readsServed(cluster: TestCluster): Promise<number> {
  const text = await (await fetch(`${cluster.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('ridedb_rpc_duration_seconds_count{kind="read"'))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

async function main(): Promise<void> {
  const most = Math.max(...SIZES);
  const cluster = await TestCluster.start({
    LOG_LEVEL: 'warn',
    MUTATIONS_PER_MINUTE_PER_IP: '0',
    MAX_SUBSCRIPTIONS_PER_CONNECTION: String(PER_CONNECTION),
    MAX_SUBSCRIPTIONS_PER_ADDRESS: String(most),
    // This one process stands in for every client: up to MAX_POLLERS fetches at once, each
    // on its own connection, beside the subscribers' websockets.
    MAX_CONNECTIONS_PER_ADDRESS: String(MAX_POLLERS + Math.ceil(most / PER_CONNECTION) + 100),
  });
  const rpc = await RpcClient.connect(cluster.config.amqpUrl, cluster.names, `live${process.pid}`, { ...cluster.config, writeTimeoutMs: 60_000 }, createLogger('warn', {}));
  const results: Array<{ live: WayResult; polling: WayResult | null }> = [];
  try {
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'live', p: PASSWORD });
    for (const n of SIZES) {
      const head = (await rpc.write('createUser', { username: `live_head_${n}`, passwordHash: 'bench-not-a-real-hash' })).seq;
      const l = await live(cluster, rpc, n, head);
      process.stdout.write(`${n} subscribers, live:    ${JSON.stringify(l)}\n`);
      const p = n <= MAX_POLLERS ? await polling(cluster, rpc, n) : null;
      if (p) process.stdout.write(`${n} subscribers, polling: ${JSON.stringify(p)}\n`);
      results.push({ live: l, polling: p });
      writeResults(results);
    }
  } finally {
    await rpc.close();
    await cluster.stop();
  }
}

function writeResults(results: Array<{ live: WayResult; polling: WayResult | null }>): void {
  fs.writeFileSync(
    path.join(ROOT, 'bench/live-results.json'),
    JSON.stringify(
      {
        measuredAt: new Date().toISOString(),
        machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
        writes_per_s: WRITES_PER_S,
        seconds: SECONDS,
        routes: ROUTES,
        sizes: results,
      },
      null,
      2,
    ) + '\n',
  );
  const row = (way: string, r: WayResult, vs?: WayResult | null) =>
    `| ${r.subscribers.toLocaleString('en')} | ${way} | ${r.changes_per_s.toLocaleString('en')} | ${r.p50_ms} / ${r.p99_ms} | ${r.p50_from_send_ms} / ${r.p99_from_send_ms}${vs ? ` (p99 ${(vs.p99_from_send_ms / Math.max(r.p99_from_send_ms, 0.1)).toFixed(0)}× lower)` : ''} | ${r.reads_per_s.toLocaleString('en')} | ${r.gateway_cpu_us_per_change} | ${r.gateway_rss_mb} | ${r.lost} / ${r.duplicated} / ${r.out_of_order} |`;
  const md = [
    '<!-- live:start -->',
    '## Live rides (`npm run bench:live`)',
    '',
    `Subscribers on ${ROUTES} routes (${PER_CONNECTION} per graphql-ws connection) while writers create ${WRITES_PER_S} rides/s for ${SECONDS} s; measured ${new Date().toISOString().slice(0, 10)} in one run. *live*: \`subscription { rides(…, afterSeq) }\`, fed by the gateway's log follower. *polling*: the same subscribers asking for their route's rides after the last one seen, every ${POLL_MS} ms (what live queries that re-run a query per subscriber do; measured up to ${MAX_POLLERS.toLocaleString('en')}). Latency: from the writer's acknowledgement to the subscriber (0 when the change arrived first: the log is read as the master commits), and from the moment the write was sent. Reads: RPCs the gateway sent to workers for it. Gateway CPU: its user and system time from the first write until every change was delivered (or the pollers stopped), per change delivered.`,
    '',
    '| subscribers | way | changes delivered/s | ms from ack p50 / p99 | ms from send p50 / p99 | reads/s | gateway CPU µs per change | gateway peak RSS MB | lost / duplicated / out of order |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---|',
    ...results.flatMap((r) => [row('live', r.live, r.polling), ...(r.polling ? [row('polling', r.polling)] : [])]),
    '',
    'Raw figures: `bench/live-results.json`.',
    '<!-- live:end -->',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(ROOT, 'bench/LIVE.md'), md);
  spliceIntoBenchmarks(ROOT, 'live', md);
}

main().catch((err: Error) => {
  process.stderr.write(`bench:live failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
