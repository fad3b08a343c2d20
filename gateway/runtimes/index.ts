import type { Config, Logger } from '../../platform';
import { DockerRuntime } from './docker';
import { ProcessRuntime } from './process';
import type { WorkerRuntime } from './runtime';

export type { Adoption, RuntimeWorker, WorkerRuntime, WorkerSpec } from './runtime';

export async function createRuntime(config: Config, log: Logger): Promise<WorkerRuntime> {
  const runtime = config.workerRuntime === 'docker' ? new DockerRuntime(config, log) : new ProcessRuntime();
  await runtime.start();
  return runtime;
}
