import { MEMBER_UPDATE_INTERVAL_MS, type ClusterNames } from '../schema';
import { ZkError, type Logger, type Zk } from '../platform';

/** The watchdog looks as often as a master beats. */
const LOOK_EVERY_MS = MEMBER_UPDATE_INTERVAL_MS;
/**
 * Looks further apart than this, by ZooKeeper's clock, start the watch over: ZooKeeper or
 * this gateway stalled in between, so the master may have had no chance to write.
 */
export const MAX_LOOK_GAP_MS = 4 * LOOK_EVERY_MS;

/** One look: ZooKeeper's clock at the watchdog's own write, and the master's znode as read right after. */
export interface Look {
  clockMs: number;
  master: { node: string; version: number } | null;
}

/**
 * Whether the master is hung, judged on ZooKeeper's clock alone: its membership znode kept
 * one version while the watchdog's looks — each within MAX_LOOK_GAP_MS of the one before,
 * so ZooKeeper took writes all along — spanned `hungMs`. Neither this gateway's clock nor
 * its delays count, so a gateway that stalls does not fence a healthy master.
 */
export class HeartbeatJudge {
  private watch: { node: string; version: number; since: number; last: number } | null = null;

  constructor(private readonly hungMs: number) {}

  /** True once the master of these looks is hung (and on every look after, until it changes). */
  judge({ clockMs, master }: Look): boolean {
    const w = this.watch;
    if (!master) {
      this.watch = null;
      return false;
    }
    if (!w || w.node !== master.node || w.version !== master.version || clockMs < w.last || clockMs - w.last > MAX_LOOK_GAP_MS) {
      this.watch = { ...master, since: clockMs, last: clockMs };
      return false;
    }
    w.last = clockMs;
    return clockMs - w.since >= this.hungMs;
  }

  /** A look failed: what follows proves nothing about the time before it. */
  reset(): void {
    this.watch = null;
  }
}

/**
 * The orchestrator's watch on the master's heartbeat (its membership znode, rewritten every
 * MEMBER_UPDATE_INTERVAL_MS). A master that stops writing — frozen, hung, cut off from
 * ZooKeeper — is reported once per znode after `hungMs`, long before its ZooKeeper session
 * would expire; the orchestrator then kills it through the runtime, and its exit is a
 * crash like any other (docs/architecture.md, *Fencing and leases*).
 */
export class MasterWatchdog {
  private readonly judge: HeartbeatJudge;
  private timer: NodeJS.Timeout | null = null;
  /** Bumped by stop: a look in flight from before then schedules no more. */
  private generation = 0;
  private readonly reported = new Set<string>();
  private failing = false;

  constructor(
    private readonly zk: Zk,
    private readonly names: ClusterNames,
    /** The master's membership znode name, as the cluster view has it. */
    private readonly masterNode: () => string | null,
    hungMs: number,
    private readonly onHung: (node: string) => Promise<void>,
    private readonly log: Logger,
  ) {
    this.judge = new HeartbeatJudge(hungMs);
  }

  start(): void {
    this.stop();
    this.schedule();
  }

  stop(): void {
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.judge.reset();
  }

  private schedule(): void {
    const generation = this.generation;
    this.timer = setTimeout(() => {
      void this.look().finally(() => {
        if (generation === this.generation) this.schedule();
      });
    }, LOOK_EVERY_MS);
  }

  /** ZooKeeper's clock now, creating the znode written for it on first use. */
  private async stampTime(): Promise<number> {
    try {
      return await this.zk.stampTime(this.names.zkClock);
    } catch (err) {
      if (!(err instanceof ZkError && err.code === 'NO_NODE')) throw err;
      await this.zk.ensure(this.names.zkClock, Buffer.alloc(0));
      return this.zk.stampTime(this.names.zkClock);
    }
  }

  private async look(): Promise<void> {
    const node = this.masterNode();
    if (!node || !this.zk.connected) return this.judge.reset();
    let look: Look;
    try {
      const clockMs = await this.stampTime();
      const got = await this.zk.getData(`${this.names.zkWorkers}/${node}`);
      look = { clockMs, master: got ? { node, version: got.version } : null };
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.log.warn({ err }, "master watchdog: could not read ZooKeeper's clock or the master's znode; watching again once it answers");
      this.failing = true;
      return this.judge.reset();
    }
    if (!this.judge.judge(look) || this.reported.has(node)) return;
    this.reported.add(node);
    // Not awaited: a kill through a Docker host that does not answer may take long, and the
    // next master must be watched meanwhile.
    void this.onHung(node).catch((err: Error) => this.log.error({ err, node }, 'master watchdog: could not fence a hung master'));
  }
}
