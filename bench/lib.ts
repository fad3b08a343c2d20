import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import autocannon from 'autocannon';

/** Runs `count` tasks with at most `concurrency` in flight, printing progress. */
export async function runPool(label: string, count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let done = 0;
  const started = Date.now();
  const progress = setInterval(() => process.stdout.write(`  ${label}: ${done}/${count} (${Math.round(done / ((Date.now() - started) / 1000))}/s)\n`), 5000);
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < count; i = next++) {
          await task(i);
          done++;
        }
      }),
    );
  } finally {
    clearInterval(progress);
  }
}

/** Starts a server process (with this Node, or `node`) and resolves once it prints `readyLine`. */
export function startServer(script: string, env: Record<string, string>, readyLine: string, node = process.execPath): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, [script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(readyLine)) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before it was ready`)));
  });
}

/** Peak resident set size of a process so far (VmHWM), in MB. */
export function peakRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  /** Requests answered in all. */
  requests: number;
  /** Failed requests: connection errors, non-2xx answers and 200 answers carrying GraphQL `errors`. */
  errors: number;
}

/**
 * Fixed-concurrency load with autocannon; `body` makes each request's JSON body.
 * `inspect`, when given, sees every answer's body (e.g. to count rows).
 */
export function load(url: string, body: () => string, connections: number, seconds: number, inspect?: (body: string) => void): Promise<LoadResult> {
  let graphqlErrors = 0;
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        method: 'POST',
        connections,
        duration: seconds,
        headers: { 'content-type': 'application/json' },
        requests: [
          {
            setupRequest: (req) => ({ ...req, body: body() }),
            onResponse: (status, responseBody) => {
              // A GraphQL error answers HTTP 200 as often as not: the body says.
              if (status < 300 && responseBody.includes('"errors":')) graphqlErrors++;
              inspect?.(responseBody);
            },
          },
        ],
      },
      (err, result) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        resolve({
          rps: Math.round(result.requests.average),
          requests: result.requests.total,
          p50: result.latency.p50,
          p99: result.latency.p99,
          errors: result.errors + result.non2xx + graphqlErrors,
        });
      },
    );
  });
}

/** Kernel clock ticks per second, the unit of /proc/<pid>/stat's CPU times. */
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

/** CPU time (user and system) a process has used so far, in ms; 0 for one that is gone. */
export function cpuMs(pid: number): number {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0; // exited (a pool connection closed, say)
    throw err;
  }
  // The command name may hold spaces and parentheses: fields are counted from its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** Every process whose command is `comm` (`postgres`, `beam.smp`): services shared by all systems measured. */
export function pidsNamed(comm: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm) pids.push(Number(entry));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // gone since readdir
    }
  }
  return pids;
}

/** Processes by role, e.g. `{ master: [pid], PostgreSQL: [pids] }`. */
export type ProcessGroups = Record<string, number[]>;

/** What a load cost in CPU: ms per request by process group, and cores busy on average. */
export interface CpuSplit {
  /** ms of CPU per request, by process group. */
  cpu: Record<string, number>;
  /** CPU used by those processes over the load's wall time, in cores. */
  coresBusy: number;
}

/**
 * Runs a load and splits the CPU it cost by process group: ms of CPU per request each
 * group used meanwhile (what bounds a figure on a machine with no idle core). Groups are
 * read before and after: a process started during the load counts from zero, and one
 * that ended during it (an idle pool connection closing) is left out, its CPU unknown.
 */
export async function withCpuSplit(groups: () => Promise<ProcessGroups>, run: () => Promise<LoadResult>): Promise<LoadResult & CpuSplit> {
  const first = await groups();
  const before = new Map([...new Set(Object.values(first).flat())].map((pid) => [pid, cpuMs(pid)]));
  const started = performance.now();
  const result = await run();
  const elapsedMs = performance.now() - started;
  const last = await groups();
  const cpu: Record<string, number> = {};
  let used = 0;
  for (const name of new Set([...Object.keys(first), ...Object.keys(last)])) {
    let ms = 0;
    for (const pid of new Set([...(first[name] ?? []), ...(last[name] ?? [])])) {
      const now = cpuMs(pid);
      if (now > 0) ms += now - (before.get(pid) ?? 0);
    }
    used += ms;
    cpu[name] = Math.round((1000 * ms) / Math.max(1, result.requests)) / 1000;
  }
  return { ...result, cpu, coresBusy: Math.round((100 * used) / elapsedMs) / 100 };
}
