import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { badInput, parseSequentialName, unavailable, workerEnvironment, type ClusterEventRecord, type ClusterNames, type Config, type Logger, type WorkerRecord, type Zk } from '../schema';
import type { ClusterView } from './clusterView';
import { dropWorkerDatabase } from './teardown';
import type { RuntimeWorker, WorkerRuntime } from './runtimes/runtime';

// By consecutive quick exits: a worker that crashes once restarts at once; a crash loop backs off.
const RESTART_BACKOFF_MS = [0, 0, 500, 2000, 10_000];
const QUICK_EXIT_MS = 10_000;

export function newWorkerId(): string {
  return `w${randomBytes(4).toString('hex')}`;
}

/** A slave target must lie within MIN_SLAVES..MAX_SLAVES; anything else is BAD_USER_INPUT. */
export function checkSlaveCount(count: number, config: Pick<Config, 'minSlaves' | 'maxSlaves'>): void {
  const { minSlaves, maxSlaves } = config;
  if (!Number.isInteger(count) || count < minSlaves || count > maxSlaves) {
    throw badInput(`count must be an integer within MIN_SLAVES..MAX_SLAVES (${minSlaves}..${maxSlaves})`);
  }
}

/**
 * Keeps the cluster at one master plus `desiredSlaves` slaves through a runtime: spawns
 * at start, replaces any worker that dies (same id, so it resumes from its own database),
 * and on a death clears its znodes at once so the election does not wait for the
 * ZooKeeper session timeout. Emits 'event' for scaling changes.
 */
export class Orchestrator extends EventEmitter {
  desiredSlaves: number;
  private stopping = false;
  private retiring = new Set<string>();
  /** Killed by crashMaster/crashSlave: replaced at once, not counted as a crash loop. */
  private crashedOnPurpose = new Set<string>();
  private quickExits = new Map<string, number>();
  private startedAt = new Map<string, number>();
  /** The scaling change in progress, if any: scaleSlaves calls run one after another. */
  private scaling: Promise<void> = Promise.resolve();

  constructor(
    private readonly runtime: WorkerRuntime,
    private readonly view: ClusterView,
    private readonly zk: Zk,
    private readonly names: ClusterNames,
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    super();
    this.desiredSlaves = Math.max(1, config.minSlaves);
    this.desiredSlaves = Math.min(this.desiredSlaves, Math.max(config.maxSlaves, 1));
    runtime.on('exit', (worker: RuntimeWorker, detail: string) => void this.onExit(worker, detail));
    // One stream of cluster events: membership and elections from ZooKeeper, scaling from here.
    view.on('event', (event: ClusterEventRecord) => this.emit('event', event));
  }

  /** Live workers as ZooKeeper sees them, with what the runtime knows (container ids). */
  workers(): WorkerRecord[] {
    const known = new Map(this.runtime.list().map((w) => [w.workerId, w]));
    return this.view.workers().map((w) => ({ ...w, containerId: w.containerId ?? known.get(w.id)?.containerId ?? null }));
  }

  master(): WorkerRecord | null {
    return this.workers().find((w) => w.role === 'MASTER') ?? null;
  }

  slaves(): WorkerRecord[] {
    return this.workers().filter((w) => w.role === 'SLAVE');
  }

  get epoch(): number {
    return this.view.epoch;
  }

  get runtimeName(): string {
    return this.runtime.name;
  }

  private async spawn(workerId: string): Promise<RuntimeWorker> {
    const worker = await this.runtime.spawn({ workerId, env: workerEnvironment(this.config) });
    this.startedAt.set(workerId, Date.now());
    this.log.info({ workerId, pid: worker.pid, runtime: this.runtime.name }, 'worker spawned');
    return worker;
  }

  /**
   * Adopts the workers an earlier gateway left running (their znodes are still there),
   * then spawns what is missing for one master and the desired slaves.
   */
  async start(): Promise<void> {
    const running = this.view.workers();
    const adopted: string[] = [];
    for (const w of running) {
      if (await this.runtime.adopt({ workerId: w.id, pid: w.pid, containerId: w.containerId })) adopted.push(w.id);
      else await this.clearZnodes(w.id); // a stale registration: its worker is gone
    }
    if (adopted.length) {
      this.desiredSlaves = Math.min(this.config.maxSlaves, Math.max(this.desiredSlaves, adopted.length - 1));
      this.log.info({ adopted, desiredSlaves: this.desiredSlaves }, 'adopted running workers');
    }
    const missing = 1 + this.desiredSlaves - adopted.length;
    if (missing <= 0) return;
    // With no master around, the first spawned worker wins the first election.
    if (!adopted.length) await this.spawn(newWorkerId());
    await Promise.all(Array.from({ length: adopted.length ? missing : missing - 1 }, () => this.spawn(newWorkerId())));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.runtime.stopAll();
  }

  /** Removes a dead worker's znodes now rather than after its session times out. */
  private async clearZnodes(workerId: string): Promise<void> {
    const election = await this.zk.getChildren(this.names.zkElection);
    const paths = [
      ...this.view.nodesOf(workerId).map((n) => `${this.names.zkWorkers}/${n}`),
      ...election.filter((n) => parseSequentialName(n).workerId === workerId).map((n) => `${this.names.zkElection}/${n}`),
    ];
    await Promise.all(paths.map((p) => this.zk.remove(p)));
  }

  private async onExit(worker: RuntimeWorker, detail: string): Promise<void> {
    const { workerId } = worker;
    this.log.warn({ workerId, pid: worker.pid, detail }, 'worker exited');
    try {
      await this.clearZnodes(workerId);
    } catch (err) {
      this.log.error({ err, workerId }, 'could not clear znodes of a dead worker');
    }
    if (this.stopping) return;
    if (this.retiring.delete(workerId)) {
      // Scaled down: nobody will restart this worker, so its replica goes too.
      await dropWorkerDatabase(this.config, workerId).catch((err: Error) => this.log.warn({ err, workerId }, 'could not drop a retired worker database'));
      return;
    }

    const lived = Date.now() - (this.startedAt.get(workerId) ?? 0);
    const onPurpose = this.crashedOnPurpose.delete(workerId);
    const quick = lived < QUICK_EXIT_MS && !onPurpose ? (this.quickExits.get(workerId) ?? 0) + 1 : 0;
    this.quickExits.set(workerId, quick);
    this.restart(workerId, quick);
  }

  /** Respawns a worker under the same id, backing off while it (or its spawn) keeps failing. */
  private restart(workerId: string, failures: number): void {
    const delay = RESTART_BACKOFF_MS[Math.min(failures, RESTART_BACKOFF_MS.length - 1)];
    if (delay) this.log.warn({ workerId, delay }, 'worker keeps failing; backing off before restart');
    setTimeout(() => {
      if (this.stopping) return;
      this.spawn(workerId).catch((err: Error) => {
        this.log.error({ err, workerId }, 'could not restart worker');
        this.restart(workerId, failures + 1);
      });
    }, delay);
  }

  /** crashMaster: SIGKILL the master, as a real crash would. */
  async crashMaster(): Promise<WorkerRecord> {
    const master = this.master();
    if (!master) throw unavailable('there is no master to crash');
    this.crashedOnPurpose.add(master.id);
    await this.runtime.kill(master.id);
    return master;
  }

  /** crashSlave: SIGKILL the slave with the highest pid. */
  async crashSlave(): Promise<WorkerRecord> {
    const slaves = this.slaves();
    const victim = slaves[slaves.length - 1];
    if (!victim) throw unavailable('there is no slave to crash');
    this.crashedOnPurpose.add(victim.id);
    await this.runtime.kill(victim.id);
    return victim;
  }

  /**
   * Sets the slave target, spawning or retiring (highest pid first) to reach it. Calls
   * take effect one after another in call order (queued before this function first
   * awaits): an operator's target and an autoscaler tick that cross must not pick their
   * victims from the same worker list, and the later call must be the one that holds.
   */
  async scaleSlaves(count: number, reason: string): Promise<void> {
    checkSlaveCount(count, this.config);
    const change = this.scaling.then(() => this.applySlaveTarget(count, reason));
    // The queue only waits for the change to settle; its failure goes to this caller.
    this.scaling = change.catch(() => undefined);
    return change;
  }

  private async applySlaveTarget(count: number, reason: string): Promise<void> {
    const from = this.desiredSlaves;
    if (count === from) return;
    this.desiredSlaves = count;
    if (count > from) {
      await Promise.all(Array.from({ length: count - from }, () => this.spawn(newWorkerId())));
    } else {
      const masterId = this.view.master()?.id;
      const live = this.runtime.list().filter((w) => w.workerId !== masterId && !this.retiring.has(w.workerId));
      const victims = live.sort((a, b) => b.pid - a.pid).slice(0, Math.max(0, live.length - count));
      for (const v of victims) {
        this.retiring.add(v.workerId);
        await this.runtime.kill(v.workerId);
      }
    }
    const event: ClusterEventRecord = {
      type: count > from ? 'SCALED_UP' : 'SCALED_DOWN',
      at: new Date().toISOString(),
      fromSlaves: from,
      toSlaves: count,
      reason,
    };
    this.log.info(event, 'scaled');
    this.emit('event', event);
  }
}
