import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { badInput, leaseTimings, unavailable, type ClusterEventRecord, type ClusterNames, type ScalingModeName, type WorkerRecord } from '../schema';
import { parseSequentialName, workerEnvironment, type Config, type Logger, type Zk } from '../platform';
import type { ClusterView } from './clusterView';
import { removeWorkerStorage } from './workerStorage';
import type { RuntimeWorker, WorkerRuntime } from './runtimes/runtime';
import { slaveToMove } from './runtimes/placement';
import { WorkerWatchdog } from './workerWatchdog';
import { releaseSilentWorker } from './silentWorkerRelease';
import type { ScalingTarget, ScalingTargetValue } from './scalingTarget';

// By consecutive quick exits: a worker that crashes once restarts at once; a crash loop backs off.
const RESTART_BACKOFF_MS = [0, 0, 500, 2000, 10_000];
const QUICK_EXIT_MS = 10_000;
/**
 * A worker that clears its znodes on a clean stop exits within milliseconds; one whose
 * membership vanished while its process lives on lost its ZooKeeper session (hung,
 * frozen, cut off) and is fenced after this long.
 */
const FENCE_GRACE_MS = 300;
/** How often the runtime, ZooKeeper and the desired counts are compared. */
const RECONCILE_MS = 1000;

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
  /** True on the gateway that won the orchestrator election (gateway/main.ts): only it acts. */
  private leading = false;
  private stopping = false;
  private retiring = new Set<string>();
  /** Killed by crashMaster/crashSlave: replaced at once, not counted as a crash loop. */
  private crashedOnPurpose = new Set<string>();
  private quickExits = new Map<string, number>();
  private startedAt = new Map<string, number>();
  /** The target change being applied, if any: changes apply one after another. */
  private scaling: Promise<void> = Promise.resolve();
  /** Workers seen registered in ZooKeeper since their (re)start. */
  private registered = new Set<string>();
  /** Registered workers whose membership is gone while the runtime still runs them, since when (performance.now()). */
  private missingSince = new Map<string, number>();
  /** Restarts scheduled (with backoff) but not yet spawned. */
  private restarting = new Set<string>();
  private reconciler: NodeJS.Timeout | null = null;
  /** The next pass for a worker whose fence grace is running (one timer for all). */
  private fenceCheck: NodeJS.Timeout | null = null;
  private fenceDue = 0;
  private reconciling = false;
  private reconcileAgain = false;
  /** Spawns under way (the runtime lists a worker only once it started). */
  private spawning = 0;
  /** Fences a serving worker whose heartbeat stops, long before its session expires; null when HUNG_WORKER_MS=0. */
  private readonly watchdog: WorkerWatchdog | null;

  constructor(
    private readonly runtime: WorkerRuntime,
    private readonly view: ClusterView,
    private readonly zk: Zk,
    private readonly names: ClusterNames,
    private readonly config: Config,
    private readonly target: ScalingTarget,
    private readonly log: Logger,
  ) {
    super();
    this.watchdog = config.hungWorkerMs
      ? new WorkerWatchdog(
          zk,
          names,
          () => view.servingNodes(),
          config.hungWorkerMs,
          (node) => this.fenceHungWorker(node),
          leaseTimings(config.zkSessionTimeoutMs).leaseMs,
          (node, version) => this.releaseSilent(node, version),
          log,
        )
      : null;
    runtime.on('exit', (worker: RuntimeWorker, detail: string, hostLost: boolean) => void this.onExit(worker, detail, hostLost));
    runtime.on('gone', (workerId: string) => {
      if (this.leading) void this.clearZnodesOf(workerId);
    });
    target.on('change', (next: ScalingTargetValue, previous: ScalingTargetValue) => this.onTargetChange(next, previous));
    // One stream of cluster events: membership and elections from ZooKeeper, scaling from here.
    view.on('event', (event: ClusterEventRecord) => {
      this.emit('event', event);
      if (event.type === 'WORKER_JOINED' && event.workerId) this.registered.add(event.workerId);
      if (event.type === 'WORKER_LEFT' && this.leading) void this.reconcile();
    });
  }

  /**
   * Brings the runtime in line with ZooKeeper and the desired counts: fences (kills) a
   * worker whose ZooKeeper session is gone while its process still runs — hung, frozen or
   * cut off; as master it would otherwise keep WriteQ's single active consumer until
   * RabbitMQ's heartbeat gives up, a minute later — and spawns workers missing from the
   * desired count. The runtime's exit notice then restarts the fenced one.
   */
  private async reconcile(): Promise<void> {
    // Not while cut off from ZooKeeper: the session may be expiring, and another gateway
    // may be elected in its place.
    if (this.stopping || !this.leading || !this.zk.connected) return;
    // One pass at a time; a request meanwhile runs one more pass after it.
    if (this.reconciling) {
      this.reconcileAgain = true;
      return;
    }
    this.reconciling = true;
    try {
      do {
        this.reconcileAgain = false;
        await this.reconcilePass();
      } while (this.reconcileAgain && !this.stopping);
    } finally {
      this.reconciling = false;
    }
  }

  /** One more pass in `ms`, unless one is due sooner; that pass re-arms what it still needs. */
  private checkFenceIn(ms: number): void {
    const due = performance.now() + ms;
    if (this.fenceCheck && this.fenceDue <= due) return;
    if (this.fenceCheck) clearTimeout(this.fenceCheck);
    this.fenceDue = due;
    this.fenceCheck = setTimeout(() => {
      this.fenceCheck = null;
      void this.reconcile();
    }, ms);
  }

  /**
   * Kills a worker whose heartbeat stopped; its exit is then a crash like any other
   * (onExit), counted as one: a worker that keeps hanging soon after its restarts backs off.
   */
  private async fenceHungWorker(node: string): Promise<void> {
    const member = this.view.memberAt(node);
    const worker = member && this.runtime.list().find((w) => w.workerId === member.id);
    if (!member || !worker || !this.leading || this.stopping || this.retiring.has(member.id)) return;
    // A znode left behind by an earlier run of this worker id (its removal failed) must not
    // get the running one killed.
    if (member.pid !== worker.pid) {
      this.log.warn({ node, workerId: member.id, znodePid: member.pid, pid: worker.pid }, 'a silent membership znode of an earlier run; not fencing the running worker');
      return;
    }
    this.log.warn(
      { workerId: member.id, role: member.role, pid: worker.pid, containerId: worker.containerId, hungWorkerMs: this.config.hungWorkerMs },
      'fencing a worker: its heartbeat stopped for HUNG_WORKER_MS',
    );
    await this.runtime.kill(worker);
  }

  /**
   * A worker silent past a master's lease (gateway/silentWorkerRelease.ts): the next
   * candidate leads, though the old process may live on (its host lost, its kill failed);
   * if it wakes it finds its znodes gone and stops.
   */
  private async releaseSilent(node: string, version: number): Promise<void> {
    const member = this.view.memberAt(node);
    if (!member || !this.leading || this.stopping) return;
    const outcome = await releaseSilentWorker(this.zk, this.names, node, version);
    if (outcome !== 'released') return;
    this.log.warn(
      { workerId: member.id, role: member.role, pid: member.pid, host: member.host },
      'released the membership and candidacy of a worker silent past a lease: the next candidate leads if it led',
    );
  }

  private async reconcilePass(): Promise<void> {
    // Monotonic: a wall clock stepped back would hold a fence off for as long.
    const now = performance.now();
    const running = this.runtime.list();
    for (const w of running) {
      const id = w.workerId;
      if (!this.registered.has(id) || this.retiring.has(id) || this.view.nodesOf(id).length) {
        this.missingSince.delete(id);
        continue;
      }
      const since = this.missingSince.get(id) ?? now;
      this.missingSince.set(id, since);
      if (now - since < FENCE_GRACE_MS) {
        // Checked again once the grace is over. Node's timers count whole milliseconds, so
        // one often fires a moment before its delay has passed by a finer clock (42 of 300
        // timers of 300 ms by Date.now(), tried here); without a new timer the fence then
        // waited for the next periodic pass, ~1 s more for a frozen master (seen as a
        // 5.4 s failover against the usual 4.3 s in test/fencing.test.ts).
        this.checkFenceIn(FENCE_GRACE_MS - (now - since) + 1);
        continue;
      }
      this.missingSince.delete(id);
      this.registered.delete(id);
      this.log.warn({ workerId: id, pid: w.pid, containerId: w.containerId }, 'fencing a worker whose ZooKeeper session is gone while its process runs');
      this.crashedOnPurpose.add(id);
      await this.runtime.kill(w).catch((err: Error) => this.log.error({ err, workerId: id }, 'could not fence a worker'));
    }
    const live = running.filter((w) => !this.retiring.has(w.workerId)).length + this.restarting.size + this.spawning;
    const missing = 1 + this.desiredSlaves - live;
    if (missing > 0 && !this.stopping) {
      this.log.warn({ missing, live, desiredSlaves: this.desiredSlaves }, 'fewer workers than desired; spawning');
      await Promise.all(Array.from({ length: missing }, () => this.spawn(newWorkerId()))).catch((err: Error) => this.log.error({ err }, 'could not spawn missing workers'));
    } else if (!this.stopping) {
      // Only a whole cluster moves a slave: between a moved slave's exit and its
      // replacement's spawn, the same skew would otherwise move a second one.
      await this.spreadOverHosts(running);
    }
  }

  /**
   * Keeps a slave on another host than the master's when there is one: after a lost host
   * returns, its replacements all ran on the hosts left. Retires one slave there; its
   * replacement (new id) is placed on the emptiest host. Only while nothing else changes
   * and no worker is missing.
   */
  private async spreadOverHosts(running: RuntimeWorker[]): Promise<void> {
    if (this.retiring.size || this.restarting.size || this.spawning) return;
    const placed = new Map(running.filter((w) => w.host !== null).map((w) => [w.workerId, w.host as string]));
    const victim = slaveToMove(this.runtime.upHosts(), placed, this.view.master()?.id ?? null);
    const worker = running.find((w) => w.workerId === victim);
    if (!worker) return;
    this.log.warn({ workerId: worker.workerId, host: worker.host }, 'master and every slave share a host while another is empty: moving a slave');
    this.retiring.add(worker.workerId);
    await this.runtime.kill(worker);
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
    this.spawning++;
    let worker: RuntimeWorker;
    try {
      worker = await this.runtime.spawn({ workerId, env: workerEnvironment(this.config) });
    } finally {
      this.spawning--;
    }
    this.registered.delete(workerId);
    this.startedAt.set(workerId, Date.now());
    this.log.info({ workerId, pid: worker.pid, host: worker.host, runtime: this.runtime.name }, 'worker spawned');
    return worker;
  }

  /** The id of the gateway that orchestrates, as the last election recorded it. */
  get orchestratorGateway(): string | null {
    return this.view.orchestrator.gatewayId;
  }

  /** Whether this gateway orchestrates (won the gateways' election). */
  get orchestrating(): boolean {
    return this.leading;
  }

  /**
   * Called when this gateway wins the orchestrator election. Adopts the workers an
   * earlier orchestrator left running (their znodes are still there), then spawns what is
   * missing for one master and the desired slaves, and from then on fences, replaces and
   * scales.
   */
  async start(): Promise<void> {
    if (this.stopping) return; // elected while this gateway shuts down: leave it to the next
    this.leading = true;
    // Counted as a pass: a worker leaving while the others are adopted (a container
    // inspected at a time) would otherwise start a pass that sees none of them running and
    // spawns a whole cluster beside them. A pass asked for meanwhile runs after.
    this.reconciling = true;
    try {
      const running = this.view.workers();
      const adopted: string[] = [];
      for (const w of running) {
        const adoption = await this.runtime.adopt({ workerId: w.id, pid: w.pid, containerId: w.containerId, host: w.host });
        if (adoption === 'adopted') {
          adopted.push(w.id);
          this.registered.add(w.id);
        } else if (adoption === 'gone')
          await this.clearZnodes(w.id); // a stale registration
        else this.log.warn({ workerId: w.id, host: w.host }, 'a registered worker is out of reach; its ZooKeeper session decides whether it is gone');
      }
      if (adopted.length) this.log.info({ adopted, desiredSlaves: this.desiredSlaves }, 'adopted running workers');
      const missing = 1 + this.desiredSlaves - adopted.length;
      if (missing > 0) {
        // With no master around, the first spawned worker wins the first election.
        if (!adopted.length) await this.spawn(newWorkerId());
        await Promise.all(Array.from({ length: adopted.length ? missing : missing - 1 }, () => this.spawn(newWorkerId())));
      }
    } finally {
      this.reconciling = false;
    }
    if (this.reconcileAgain) void this.reconcile();
    this.reconciler = setInterval(() => void this.reconcile(), RECONCILE_MS);
    // Not if the session expired while the workers were adopted (stepDown ran meanwhile).
    if (this.leading) this.watchdog?.start();
    // A target set while no gateway orchestrated, or more adopted workers than it asks for.
    await this.applyTarget();
  }

  /**
   * Stops acting at once, leaving the workers as they are: this gateway's ZooKeeper
   * session expired, its candidacy went with it, and another gateway may orchestrate now.
   * It may be elected again later (start adopts the workers then).
   */
  stepDown(): void {
    if (!this.leading) return;
    this.leading = false;
    if (this.reconciler) clearInterval(this.reconciler);
    this.reconciler = null;
    if (this.fenceCheck) clearTimeout(this.fenceCheck);
    this.fenceCheck = null;
    this.watchdog?.stop();
    this.log.warn('stopped orchestrating: the ZooKeeper session expired');
  }

  /**
   * Stops orchestrating. `stopWorkers`: stop them too (the last gateway of a cluster);
   * otherwise they keep running for the next orchestrator to adopt.
   */
  async stop(stopWorkers: boolean): Promise<void> {
    this.stopping = true;
    if (this.reconciler) clearInterval(this.reconciler);
    if (this.fenceCheck) clearTimeout(this.fenceCheck);
    this.watchdog?.stop();
    if (this.leading && stopWorkers) await this.runtime.stopAll();
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

  private async clearZnodesOf(workerId: string): Promise<void> {
    try {
      await this.clearZnodes(workerId);
    } catch (err) {
      this.log.error({ err, workerId }, 'could not clear znodes of a dead worker');
    }
  }

  private async onExit(worker: RuntimeWorker, detail: string, hostLost = false): Promise<void> {
    const { workerId } = worker;
    this.log.warn({ workerId, pid: worker.pid, host: worker.host, detail }, 'worker exited');
    this.registered.delete(workerId);
    this.missingSince.delete(workerId);
    // A gateway that does not orchestrate leaves the replacement to the one that does.
    if (!this.leading) return;
    // Counted as on its way back from now, so reconcile does not spawn a second one.
    if (!this.retiring.has(workerId)) this.restarting.add(workerId);
    // A worker lost with its host may still run and, if master, hold its lease: removing
    // its candidacy would let a successor write to the log inside that lease. Its session
    // decides, or its removal when the host returns ('gone').
    if (!hostLost) await this.clearZnodesOf(workerId);
    if (this.stopping) return;
    if (this.retiring.delete(workerId)) {
      this.restarting.delete(workerId);
      // Scaled down: nobody will restart this worker, so its replica goes too.
      await removeWorkerStorage(this.config, workerId).catch((err: Error) => this.log.warn({ err, workerId }, 'could not remove a retired worker storage'));
      return;
    }
    if (hostLost) {
      // Its replica went with its host: a new worker (new id, fresh storage) takes its
      // place on a host that answers, catching up from a peer's snapshot and the log.
      this.restarting.delete(workerId);
      this.quickExits.delete(workerId);
      this.startedAt.delete(workerId);
      void this.reconcile();
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
    this.restarting.add(workerId);
    setTimeout(() => {
      this.restarting.delete(workerId);
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
    await this.runtime.kill({ workerId: master.id, pid: master.pid, containerId: master.containerId, host: master.host }).catch((err: unknown) => {
      this.crashedOnPurpose.delete(master.id);
      throw err;
    });
    return master;
  }

  /** crashSlave: SIGKILL the slave with the highest pid. */
  async crashSlave(): Promise<WorkerRecord> {
    const slaves = this.slaves();
    const victim = slaves[slaves.length - 1];
    if (!victim) throw unavailable('there is no slave to crash');
    this.crashedOnPurpose.add(victim.id);
    await this.runtime.kill({ workerId: victim.id, pid: victim.pid, containerId: victim.containerId, host: victim.host }).catch((err: unknown) => {
      this.crashedOnPurpose.delete(victim.id);
      throw err;
    });
    return victim;
  }

  /**
   * Sets the slave target in ZooKeeper (any gateway may); the orchestrating gateway acts
   * on it. With `unlessManual` (the autoscaler) an operator's target is left alone: the
   * check and the write are one versioned update, so an operator's target set meanwhile
   * wins.
   */
  async scaleSlaves(count: number, reason: string, mode: ScalingModeName, options: { unlessManual?: boolean } = {}): Promise<void> {
    checkSlaveCount(count, this.config);
    await this.target.set((current) =>
      (options.unlessManual && current.mode === 'MANUAL') || (current.desiredSlaves === count && current.mode === mode) ? null : { desiredSlaves: count, mode, reason },
    );
    if (this.leading) await this.scaling;
  }

  /** Back to the autoscaler, which sets the target on its next run. */
  async automaticScaling(): Promise<void> {
    await this.target.set((current) => (current.mode === 'AUTOMATIC' ? null : { ...current, mode: 'AUTOMATIC', reason: 'back to automatic scaling' }));
  }

  get scalingMode(): ScalingModeName {
    return this.target.mode;
  }

  get desiredSlaves(): number {
    return this.target.desiredSlaves;
  }

  /** A changed target, seen by every gateway: reported by all, acted on by the orchestrator. */
  private onTargetChange(next: ScalingTargetValue, previous: ScalingTargetValue): void {
    if (next.desiredSlaves !== previous.desiredSlaves) {
      const event: ClusterEventRecord = {
        type: next.desiredSlaves > previous.desiredSlaves ? 'SCALED_UP' : 'SCALED_DOWN',
        at: next.at,
        fromSlaves: previous.desiredSlaves,
        toSlaves: next.desiredSlaves,
        reason: next.reason,
      };
      this.log.info(event, 'scaled');
      this.emit('event', event);
    }
    // Never rejects (it logs its failures); the scaling chain orders it after earlier changes.
    if (this.leading) void this.applyTarget();
  }

  /**
   * Spawns or retires (highest pid first, never the master) until the workers running or
   * on their way match one master plus the target. One change at a time: two targets that
   * cross must not pick their victims from the same worker list.
   */
  private applyTarget(): Promise<void> {
    this.scaling = this.scaling
      .then(async () => {
        if (this.stopping) return;
        const want = 1 + this.target.desiredSlaves;
        const running = this.runtime.list().filter((w) => !this.retiring.has(w.workerId));
        const have = running.length + this.spawning + this.restarting.size;
        if (have < want) {
          await Promise.all(Array.from({ length: want - have }, () => this.spawn(newWorkerId())));
        } else if (have > want) {
          const masterId = this.view.master()?.id;
          const victims = running
            .filter((w) => w.workerId !== masterId)
            .sort((a, b) => b.pid - a.pid)
            .slice(0, have - want);
          for (const v of victims) {
            this.retiring.add(v.workerId);
            await this.runtime.kill(v);
          }
        }
      })
      .catch((err: unknown) => this.log.error({ err }, 'could not apply the slave target'));
    return this.scaling;
  }
}
