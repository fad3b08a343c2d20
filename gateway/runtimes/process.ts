import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import type { Adoption, RuntimeWorker, WorkerRuntime, WorkerSpec } from './runtime';
import { NODE_PROCESS_ENV, WORKER_NODE_FLAGS } from '../nodeFlags';
import { isProcessRunning } from '../../platform';
import { unavailable } from '../../schema';

const STOP_GRACE_MS = 5000;
/** How often adopted workers (not our children, so no exit event) are checked for life. */
const ADOPTED_POLL_MS = 100;

/** Whether a worker process runs (a zombie does not: platform/processIdentity.ts). */
export const isAlive = isProcessRunning;
const WORKER_ENTRY = path.resolve(__dirname, '../../worker/main.js');

/** Workers as child processes of the gateway, on this machine. */
export class ProcessRuntime extends EventEmitter implements WorkerRuntime {
  readonly name = 'process';
  private children = new Map<string, { child: ChildProcess; worker: RuntimeWorker }>();
  private adopted = new Map<string, RuntimeWorker>();
  private poller: NodeJS.Timeout | null = null;

  async start(): Promise<void> {}

  async spawn(spec: WorkerSpec): Promise<RuntimeWorker> {
    const child = spawn(process.execPath, [...WORKER_NODE_FLAGS, WORKER_ENTRY], {
      env: { ...NODE_PROCESS_ENV, ...process.env, ...spec.env, WORKER_ID: spec.workerId, WORKER_HOST: os.hostname() },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (child.pid === undefined) {
      await new Promise((resolve) => child.once('error', resolve));
      throw new Error(`could not start worker ${spec.workerId}`);
    }
    const worker: RuntimeWorker = { workerId: spec.workerId, pid: child.pid, containerId: null, host: os.hostname() };
    this.children.set(spec.workerId, { child, worker });
    child.once('exit', (code, signal) => {
      if (this.children.get(spec.workerId)?.child === child) this.children.delete(spec.workerId);
      this.emit('exit', worker, signal ? `killed by ${signal}` : `exited with code ${code}`);
    });
    return worker;
  }

  async adopt(worker: RuntimeWorker): Promise<Adoption> {
    // A container, or a process of another machine: out of this runtime's sight.
    if (worker.containerId || (worker.host !== null && worker.host !== os.hostname())) return 'unreachable';
    if (!isAlive(worker.pid)) return 'gone';
    // Its own child (this gateway orchestrates again after stepping down): listed and
    // watched once, or it would count twice toward the target and its exit be reported twice.
    if (this.children.get(worker.workerId)?.worker.pid === worker.pid) return 'adopted';
    this.adopted.set(worker.workerId, worker);
    this.poller ??= setInterval(() => {
      for (const [id, w] of this.adopted) {
        if (isAlive(w.pid)) continue;
        this.adopted.delete(id);
        this.emit('exit', w, 'adopted worker is gone');
      }
    }, ADOPTED_POLL_MS);
    return 'adopted';
  }

  async kill(worker: RuntimeWorker): Promise<void> {
    // Its pid means another process here: only the gateway on its machine can kill it.
    if (worker.host !== null && worker.host !== os.hostname())
      throw unavailable(`worker ${worker.workerId} runs on ${worker.host}, not on this machine (${os.hostname()}): ask the gateway there`);
    const child = this.children.get(worker.workerId)?.child;
    if (child) child.kill('SIGKILL');
    else if (isAlive(worker.pid)) process.kill(worker.pid, 'SIGKILL');
  }

  upHosts(): string[] {
    return [os.hostname()];
  }

  list(): RuntimeWorker[] {
    return [...[...this.children.values()].map((c) => c.worker), ...this.adopted.values()];
  }

  async stopAll(): Promise<void> {
    if (this.poller) clearInterval(this.poller);
    const adopted = [...this.adopted.values()];
    this.adopted.clear();
    for (const w of adopted) process.kill(w.pid, 'SIGTERM');
    await Promise.all(
      adopted.map(async (w) => {
        const deadline = Date.now() + STOP_GRACE_MS;
        while (isAlive(w.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, ADOPTED_POLL_MS));
        if (isAlive(w.pid)) process.kill(w.pid, 'SIGKILL');
      }),
    );
    await Promise.all(
      [...this.children.values()].map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const force = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
            child.once('exit', () => {
              clearTimeout(force);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
  }
}
