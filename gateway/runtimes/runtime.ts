import type { EventEmitter } from 'node:events';

/** A worker as a runtime knows it: enough to find and kill it. */
export interface RuntimeWorker {
  workerId: string;
  pid: number;
  containerId: string | null;
  /** The machine (or Docker host of DOCKER_HOSTS) it runs on; null when not known. */
  host: string | null;
}

/**
 * What `adopt` found: the worker taken in charge; surely not running (its znodes may go);
 * or out of this runtime's sight (its host does not answer, another machine's process),
 * so it may still run and its ZooKeeper session decides.
 */
export type Adoption = 'adopted' | 'gone' | 'unreachable';

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
 * Such a worker is not known to be dead (only its host's daemon may be cut off), so its
 * ZooKeeper session, not the orchestrator, ends its membership and candidacy. Emits
 * 'gone' (workerId: string) once a worker reported lost with its host surely no longer
 * runs (the host answered again and its container was removed).
 */
export interface WorkerRuntime extends EventEmitter {
  readonly name: string;
  /** Connects to the backend (checks it answers, starts watching for exits). */
  start(): Promise<void>;
  spawn(spec: WorkerSpec): Promise<RuntimeWorker>;
  /**
   * Takes charge of a worker an earlier gateway started (found in ZooKeeper), so a
   * restarted gateway watches, kills and stops it like its own instead of starting a
   * second set.
   */
  adopt(worker: RuntimeWorker): Promise<Adoption>;
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
