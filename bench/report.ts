import fs from 'node:fs';
import path from 'node:path';
import type { LoadResult } from './lib';

export interface Row extends LoadResult {
  system: string;
  query: 'q1' | 'q2' | 'm1';
}

export interface ReadFigures {
  ridedb: number;
  baseline: number;
  postgraphile: number;
  ridedb_p99_ms: number;
}

export interface BenchResults {
  q1: ReadFigures;
  q2: ReadFigures;
  m1: { ridedb: number; ridedb_p99_ms: number };
  catchup_entries_per_s: number | null;
  gateway_rss_mb: number;
  worker_rss_mb: number;
  gateway_plus_two_workers_rss_mb: number;
}

export interface RunInfo {
  command: string;
  machine: string;
  connections: number;
  seconds: number;
  minutes: number;
}

const QUERY_TEXT = {
  q1: 'Q1 `rides(source, destination)`: ~25 upcoming rides with creator and riders',
  q2: 'Q2 `ride(id)` with `createdBy` and `riders` (nested)',
  m1: 'M1 `createRide`',
};

/** Mean per system and query over the interleaved rounds. */
function table(rows: Row[]): Array<{ system: string; query: Row['query']; rps: number; p50: number; p99: number }> {
  const keys = [...new Set(rows.map((r) => `${r.query}|${r.system}`))];
  return keys.map((key) => {
    const [query, system] = key.split('|') as [Row['query'], string];
    const of = rows.filter((r) => r.query === query && r.system === system);
    const avg = (k: 'rps' | 'p50' | 'p99') => Math.round(of.reduce((a, r) => a + r[k], 0) / of.length);
    return { system, query, rps: avg('rps'), p50: avg('p50'), p99: avg('p99') };
  });
}

/** A horizontal bar chart of requests/s per system, one group per query. */
function chart(lines: ReturnType<typeof table>): string {
  const reads = lines.filter((l) => l.query !== 'm1');
  const max = Math.max(...reads.map((l) => l.rps), 1);
  const barH = 18;
  const rowsSvg: string[] = [];
  let y = 30;
  for (const query of ['q1', 'q2'] as const) {
    rowsSvg.push(`<text x="10" y="${y}" font-weight="bold">${query.toUpperCase()}</text>`);
    y += 8;
    for (const l of reads.filter((r) => r.query === query)) {
      const w = Math.round((l.rps / max) * 420);
      const color = l.system.startsWith('ridedb') ? '#2f7ed8' : l.system === 'baseline' ? '#8bbc21' : '#f28f43';
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

export function writeReport(root: string, results: BenchResults, rows: Row[], info: RunInfo): void {
  fs.writeFileSync(path.join(root, 'bench/results.json'), JSON.stringify(results, null, 2) + '\n');
  const lines = table(rows);
  fs.writeFileSync(path.join(root, 'bench/chart.svg'), chart(lines));
  const baselineOf = (q: string) => lines.find((l) => l.query === q && l.system === 'baseline')?.rps ?? 0;
  const md = [
    '# Benchmarks',
    '',
    `Produced by \`${info.command}\` (${info.minutes.toFixed(1)} min) on ${info.machine}.`,
    `Load: autocannon, ${info.connections} connections, ${info.seconds} s per measurement; systems interleaved.`,
    'Data: 10,000 users, 50,000 rides over 132 routes (about 25 upcoming per route), riders on a third of the rides, written through ridedb itself and copied to one plain database for the others.',
    '',
    '- **ridedb-N-slave**: the gateway with 1 master and N slaves (process runtime).',
    '- **baseline**: Apollo Server with the same type-graphql schema and resolvers, reading one PostgreSQL database directly with pg (same SQL, pool of 10).',
    '- **postgraphile**: PostGraphile 4 on that database, in its own query shape.',
    '',
    '| query | system | req/s | p50 ms | p99 ms | vs baseline |',
    '|---|---|---:|---:|---:|---:|',
    ...lines.map(
      (l) => `| ${QUERY_TEXT[l.query]} | ${l.system} | ${l.rps} | ${l.p50} | ${l.p99} | ${l.query === 'm1' ? '' : `${(l.rps / Math.max(1, baselineOf(l.query))).toFixed(2)}×`} |`,
    ),
    '',
    '![requests per second](bench/chart.svg)',
    '',
    `Peak RSS: gateway ${results.gateway_rss_mb} MB, largest worker ${results.worker_rss_mb} MB, gateway plus two workers ${results.gateway_plus_two_workers_rss_mb} MB.`,
    results.catchup_entries_per_s === null ? '' : `Catch-up (\`npm run bench:catchup\`): ${results.catchup_entries_per_s} log entries/s for a new worker.`,
    '',
    'Raw figures: `bench/results.json`.',
    '',
  ];
  const notesFile = path.join(root, 'bench/NOTES.md');
  if (fs.existsSync(notesFile)) md.push(fs.readFileSync(notesFile, 'utf8'));
  // bench:scale's and bench:live's tables, kept across runs of this benchmark.
  for (const table of ['bench/SCALE.md', 'bench/LIVE.md']) {
    const file = path.join(root, table);
    if (fs.existsSync(file)) md.push(fs.readFileSync(file, 'utf8'));
  }
  fs.writeFileSync(path.join(root, 'BENCHMARKS.md'), md.join('\n'));
}
