import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { RuntimeWorker, WorkerRuntime, WorkerSpec } from './runtime';

const STOP_GRACE_MS = 5000;
const WORKER_ENTRY = path.resolve(__dirname, '../../worker/main.js');

/** Workers as child processes of the gateway, on this machine. */
export class ProcessRuntime extends EventEmitter implements WorkerRuntime {
  readonly name = 'process';
  private children = new Map<string, { child: ChildProcess; worker: RuntimeWorker }>();

  async start(): Promise<void> {}

  async spawn(spec: WorkerSpec): Promise<RuntimeWorker> {
    const child = spawn(process.execPath, [WORKER_ENTRY], {
      env: { ...process.env, ...spec.env, WORKER_ID: spec.workerId },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (child.pid === undefined) {
      await new Promise((resolve) => child.once('error', resolve));
      throw new Error(`could not start worker ${spec.workerId}`);
    }
    const worker: RuntimeWorker = { workerId: spec.workerId, pid: child.pid, containerId: null };
    this.children.set(spec.workerId, { child, worker });
    child.once('exit', (code, signal) => {
      if (this.children.get(spec.workerId)?.child === child) this.children.delete(spec.workerId);
      this.emit('exit', worker, signal ? `killed by ${signal}` : `exited with code ${code}`);
    });
    return worker;
  }

  async kill(workerId: string): Promise<void> {
    this.children.get(workerId)?.child.kill('SIGKILL');
  }

  list(): RuntimeWorker[] {
    return [...this.children.values()].map((c) => c.worker);
  }

  async stopAll(): Promise<void> {
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
