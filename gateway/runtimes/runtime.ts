import type { EventEmitter } from 'node:events';

/** A worker as a runtime knows it: enough to find and kill it. */
export interface RuntimeWorker {
  workerId: string;
  pid: number;
  containerId: string | null;
  /** The machine (or Docker host of DOCKER_HOSTS) it runs on; null when not known. */
  host: string | null;
}

export interface WorkerSpec {
  workerId: string;
  /** Cluster settings the worker needs (AMQP_URL, ZK_HOSTS, ...); the runtime adds WORKER_ID and WORKER_HOST. */
  env: Record<string, string>;
}

/**
 * Where workers run. The orchestrator drives every runtime through this interface only.
 * Emits 'exit' (worker: RuntimeWorker, detail: string, hostLost: boolean) whenever a worker
 * stops, for any reason. `hostLost`: its whole host stopped answering, so its storage is
 * out of reach too; the orchestrator replaces it under a new id rather than restarting it.
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
  /** The hosts new workers can be placed on now (one for the process runtime). */
  upHosts(): string[];
  /** Stops every worker this runtime started (SIGTERM, then SIGKILL after a grace period). */
  stopAll(): Promise<void>;
}
