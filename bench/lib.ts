import { spawn, type ChildProcess } from 'node:child_process';
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
        resolve({ rps: Math.round(result.requests.average), p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx + graphqlErrors });
      },
    );
  });
}
