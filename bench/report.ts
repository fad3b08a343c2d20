import fs from 'node:fs';
import path from 'node:path';
import type { CpuSplit, LoadResult } from './lib';

/** A measurement; ridedb's own carry their CPU split (bench/lib.ts withCpuSplit). */
export interface Row extends LoadResult, Partial<CpuSplit> {
  system: string;
  query: 'q1' | 'q2' | 'm1' | 'm1_256' | 'mix';
  connections: number;
}

/** Per system (by name, `-` as `_`): mean req/s, `<system>_p50_ms`, `<system>_p99_ms`, `<system>_runs`. */
export type ReadFigures = Record<string, number | number[]> & { ridedb: number; ridedb_p99_ms: number };

export interface BenchResults {
  q1: ReadFigures;
  q2: ReadFigures;
  m1: { ridedb: number; ridedb_p99_ms: number; ridedb_runs?: number[]; at_256: Record<string, number | number[]> };
  /** The mixed day at 256 connections; a peer without a write path ran the reads only. */
  mix: Record<string, { rps: number; p50_ms: number; p99_ms: number; reads_only: boolean }>;
  catchup_entries_per_s: number | null;
  gateway_rss_mb: number;
  worker_rss_mb: number;
  gateway_plus_two_workers_rss_mb: number;
  /** ms of CPU per request by process group, per ridedb load (`<query> <system>`); filled in by writeReport. */
  cpu_ms_per_request?: Record<string, Record<string, number>>;
}

export interface RunInfo {
  command: string;
  machine: string;
  connections: number;
  seconds: number;
  rounds: number;
  minutes: number;
  /** CPU cores of the machine. */
  cores: number;
}

const QUERY_TEXT: Record<Row['query'], string> = {
  q1: 'Q1 `rides(source, destination)`: the upcoming rides of a route with creator and riders',
  q2: 'Q2 `ride(id)` with `createdBy`, areas and `riders` (nested)',
  m1: 'M1 `createRide`',
  m1_256: 'M1 `createRide`',
  mix: 'Mixed day: 90 % Q1 on popular routes (Zipf), 5 % createRide, 5 % joinRide',
};

/** A system's figures for a query over the rounds; the CPU split is the rounds' mean. */
interface Line extends Partial<CpuSplit> {
  system: string;
  query: Row['query'];
  connections: number;
  rps: number;
  p50: number;
  p99: number;
  runs: number[];
}

/** Mean per system and query over the interleaved rounds, with each round's req/s. */
function table(rows: Row[]): Line[] {
  const keys = [...new Set(rows.map((r) => `${r.query}|${r.system}`))];
  return keys.map((key) => {
    const [query, system] = key.split('|') as [Row['query'], string];
    const of = rows.filter((r) => r.query === query && r.system === system);
    const avg = (k: 'rps' | 'p50' | 'p99') => Math.round(of.reduce((a, r) => a + r[k], 0) / of.length);
    const split = of.flatMap((r) => (r.cpu && r.coresBusy !== undefined ? [{ cpu: r.cpu, coresBusy: r.coresBusy }] : []));
    const mean = (value: (s: CpuSplit) => number) => Math.round((1000 * split.reduce((a, s) => a + value(s), 0)) / split.length) / 1000;
    const cpu = split.length ? { cpu: Object.fromEntries(Object.keys(split[0].cpu).map((g) => [g, mean((s) => s.cpu[g] ?? 0)])), coresBusy: mean((s) => s.coresBusy) } : undefined;
    return { system, query, connections: of[0].connections, rps: avg('rps'), p50: avg('p50'), p99: avg('p99'), runs: of.map((r) => r.rps), ...cpu };
  });
}

/** A horizontal bar chart of requests/s per system, one group per query. */
function chart(lines: ReturnType<typeof table>): string {
  const reads = lines.filter((l) => l.query === 'q1' || l.query === 'q2');
  const max = Math.max(...reads.map((l) => l.rps), 1);
  const barH = 18;
  const rowsSvg: string[] = [];
  let y = 30;
  for (const query of ['q1', 'q2'] as const) {
    rowsSvg.push(`<text x="10" y="${y}" font-weight="bold">${query.toUpperCase()}</text>`);
    y += 8;
    for (const l of reads.filter((r) => r.query === query)) {
      const w = Math.round((l.rps / max) * 420);
      const color = l.system.startsWith('ridedb') ? '#2f7ed8' : l.system.endsWith('_limit') ? '#999999' : '#f28f43';
      rowsSvg.push(
        `<text x="10" y="${y + 13}">${l.system}</text><rect x="150" y="${y}" width="${w}" height="${barH - 4}" fill="${color}"/><text x="${156 + w}" y="${y + 12}">${l.rps}</text>`,
      );
      y += barH;
    }
    y += 14;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="640" height="${y + 10}" font-family="sans-serif" font-size="12">
<text x="10" y="14">requests/s (higher is better)</text>
${rowsSvg.join('\n')}
</svg>
`;
}

/**
 * Puts a benchmark's own section (between `<!-- name:start -->` and `<!-- name:end -->`)
 * into BENCHMARKS.md, replacing the one there, so `npm run bench` and the long benchmarks
 * each renew their part.
 */
export function spliceIntoBenchmarks(root: string, name: string, md: string): void {
  const benchmarks = path.join(root, 'BENCHMARKS.md');
  const current = fs.existsSync(benchmarks) ? fs.readFileSync(benchmarks, 'utf8') : '# Benchmarks\n';
  const section = new RegExp(`<!-- ${name}:start -->[\\s\\S]*<!-- ${name}:end -->\\n?`);
  fs.writeFileSync(benchmarks, section.test(current) ? current.replace(section, md) : `${current.trimEnd()}\n\n${md}`);
}

/**
 * Where ridedb's CPU went in each of its loads: what bounds a figure once no core is idle
 * (`cores busy` near the machine's count).
 */
function cpuTable(lines: Array<Line & CpuSplit>, cores: number): string[] {
  if (!lines.length) return [];
  const groups = Object.keys(lines[0].cpu);
  const label = (l: Line) => (l.query === 'mix' ? `mix, ${l.system}` : `${l.query.replace('_256', '')} ${l.system}`);
  return [
    '### Where the CPU goes (ridedb)',
    '',
    `ms of CPU per request by process while ridedb served each load (\`/proc/<pid>/stat\` before and after; PostgreSQL and RabbitMQ are all their processes on the machine, the idle peers' connections included). *Cores busy* is their CPU over the load's wall time; this machine has ${cores}: a load near that is bound by CPU, and only less CPU per request raises it.`,
    '',
    `| load | connections | req/s | ${groups.join(' | ')} | sum | cores busy |`,
    `|---|---:|---:|${groups.map(() => '---:|').join('')}---:|---:|`,
    ...lines.map((l) => {
      const sum = groups.reduce((a, g) => a + l.cpu[g], 0);
      return `| ${label(l)} | ${l.connections} | ${l.rps} | ${groups.map((g) => l.cpu[g].toFixed(3)).join(' | ')} | ${sum.toFixed(3)} | ${l.coresBusy.toFixed(2)} |`;
    }),
    '',
  ];
}

export function writeReport(root: string, results: BenchResults, rows: Row[], info: RunInfo): void {
  const lines = table(rows);
  const split = lines.filter((l): l is Line & CpuSplit => l.cpu !== undefined && l.coresBusy !== undefined);
  const cpuMsPerRequest = Object.fromEntries(split.map((l) => [`${l.query} ${l.system}`, { ...l.cpu, cores_busy: l.coresBusy }]));
  fs.writeFileSync(path.join(root, 'bench/results.json'), JSON.stringify({ ...results, cpu_ms_per_request: cpuMsPerRequest }, null, 2) + '\n');
  fs.writeFileSync(path.join(root, 'bench/chart.svg'), chart(lines));
  const rpsOf = (q: Row['query'], system: string) => lines.find((l) => l.query === q && l.system === system)?.rps ?? 0;
  const ratio = (a: number, b: number) => (b ? `${(a / b).toFixed(2)}×` : '');
  const readTable = (q: 'q1' | 'q2') => {
    const ours = rpsOf(q, 'ridedb');
    return [
      `### ${QUERY_TEXT[q]}`,
      '',
      '| system | req/s (mean) | each round | p50 ms | p99 ms | ridedb ÷ this |',
      '|---|---:|---|---:|---:|---:|',
      ...lines.filter((l) => l.query === q).map((l) => `| ${l.system} | ${l.rps} | ${l.runs.join(' / ')} | ${l.p50} | ${l.p99} | ${ratio(ours, l.rps)} |`),
      '',
    ];
  };
  const mixLines = lines.filter((l) => l.query === 'mix');
  const cachedMix = rpsOf('mix', 'ridedb-cached');
  const md = [
    '# Benchmarks',
    '',
    `Produced by \`${info.command}\` (${info.minutes.toFixed(1)} min) on ${info.machine}.`,
    `Load: autocannon, ${info.connections} connections, ${info.seconds} s per measurement; ${info.rounds} interleaved rounds (every system once per round).`,
    'Data: 10,000 users, 50,000 rides over 132 routes (about 25 upcoming per route), riders on a third of the rides, written through ridedb itself and copied to one plain database for the others. Before timing, every system answered Q1 for every route and Q2 for 50 rides with the same rides, creators and riders (checked).',
    '',
    '- **ridedb**: the gateway with 1 master and 1 slave (process runtime), read cache off (`READ_CACHE_BYTES=0`): every answer computed by a slave. **ridedb-cached**: the same cluster through a gateway with the read cache on (the default).',
    "- **mercurius**: Mercurius on Fastify with graphql-jit and batched loaders, serving ridedb's own SDL (same query text), pg pool of 10 (`bench/mercurius/server.js`).",
    '- **postgraphile**: PostGraphile 4 on the copied database, in its own query shape (reads only: mutations off). **postgraphile5**: PostGraphile 5 (grafast, Amber preset, production mode, mutations off) on Node 22 from the npm registry (`bench/postgraphile5/`), the same query in its names.',
    "- **baseline**: Apollo Server with ridedb's type-graphql schema and resolvers, reading the copied database with pg (reads only).",
    "- **sql_limit**: the slave's statement for the query alone, prepared, through pg with the same connections; **http_limit**: a bare Node HTTP server answering a fixed Q1/Q2 body. Both are ceilings, not peers.",
    '',
    ...readTable('q1'),
    ...readTable('q2'),
    '![requests per second](bench/chart.svg)',
    '',
    '### Writes',
    '',
    '| | writes/s (mean) | each round | p50 ms | p99 ms |',
    '|---|---:|---|---:|---:|',
    ...lines
      .filter((l) => l.query === 'm1' || l.query === 'm1_256')
      .map((l) => `| ${QUERY_TEXT[l.query]}, ${l.connections} connections | ${l.rps} | ${l.runs.join(' / ')} | ${l.p50} | ${l.p99} |`),
    '',
    `### ${QUERY_TEXT.mix}, ${mixLines[0]?.connections ?? 256} connections`,
    '',
    '| system | req/s | p50 ms | p99 ms | ridedb-cached ÷ this |',
    '|---|---:|---:|---:|---:|',
    ...mixLines.map((l) => `| ${l.system} | ${l.rps} | ${l.p50} | ${l.p99} | ${ratio(cachedMix, l.rps)} |`),
    '',
    'A system marked *reads only* has no write path here and ran the same reads without the writes (a lighter load than the others carry).',
    '',
    ...cpuTable(split, info.cores),
    `Peak RSS: gateway ${results.gateway_rss_mb} MB, largest worker ${results.worker_rss_mb} MB, gateway plus two workers ${results.gateway_plus_two_workers_rss_mb} MB.`,
    results.catchup_entries_per_s === null ? '' : `Catch-up (\`npm run bench:catchup\`): ${results.catchup_entries_per_s} log entries/s for a new worker.`,
    '',
    'Raw figures: `bench/results.json`.',
    '',
  ];
  const notesFile = path.join(root, 'bench/NOTES.md');
  if (fs.existsSync(notesFile)) md.push(fs.readFileSync(notesFile, 'utf8'));
  // Sections other runs keep (bench:scale, bench:live, test:multinode's faults): a run of this
  // benchmark must not drop them.
  for (const table of ['bench/SCALE.md', 'bench/LIVE.md', 'bench/MULTINODE.md']) {
    const file = path.join(root, table);
    if (fs.existsSync(file)) md.push(fs.readFileSync(file, 'utf8'));
  }
  fs.writeFileSync(path.join(root, 'BENCHMARKS.md'), md.join('\n'));
}
