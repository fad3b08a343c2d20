import type { EventEmitter } from 'node:events';

/** A worker as a runtime knows it: enough to find and kill it. */
export interface RuntimeWorker {
  workerId: string;
  pid: number;
  containerId: string | null;
}

export interface WorkerSpec {
  workerId: string;
  /** Cluster settings the worker needs (AMQP_URL, ZK_HOSTS, ...). */
  env: Record<string, string>;
}

/**
 * Where workers run. The orchestrator drives every runtime through this interface only.
 * Emits 'exit' (worker: RuntimeWorker, detail: string) whenever a worker stops, for any reason.
 */
export interface WorkerRuntime extends EventEmitter {
  readonly name: string;
  /** Connects to the backend (checks it answers, starts watching for exits). */
  start(): Promise<void>;
  spawn(spec: WorkerSpec): Promise<RuntimeWorker>;
  /**
   * Takes charge of a worker an earlier gateway started (found in ZooKeeper), so a
   * restarted gateway watches, kills and stops it like its own instead of starting a
   * second set. Returns false if this runtime cannot reach it.
   */
  adopt(worker: RuntimeWorker): Promise<boolean>;
  /**
   * Kills a worker at once (SIGKILL): a crash, as far as the cluster can tell. By its
   * pid or container, so a gateway that does not orchestrate (and so neither started nor
   * adopted it) can kill it too.
   */
  kill(worker: RuntimeWorker): Promise<void>;
  list(): RuntimeWorker[];
  /** Stops every worker this runtime started (SIGTERM, then SIGKILL after a grace period). */
  stopAll(): Promise<void>;
}
