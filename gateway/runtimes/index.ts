import type { Config } from '../../schema';
import { ProcessRuntime } from './process';
import type { WorkerRuntime } from './runtime';

export type { RuntimeWorker, WorkerRuntime, WorkerSpec } from './runtime';

export function createRuntime(config: Config): WorkerRuntime {
  switch (config.workerRuntime) {
    case 'process':
      return new ProcessRuntime();
    case 'docker':
      throw new Error('WORKER_RUNTIME=docker is not available yet; use process');
  }
}
