import { MEMBER_UPDATE_INTERVAL_MS, memberDataSchema, parseJsonOrNull, releaseAfterMs, type ClusterNames } from '../schema';
import { ZkError, type Logger, type Zk } from '../platform';

/** The watchdog looks as often as a worker beats. */
const LOOK_EVERY_MS = MEMBER_UPDATE_INTERVAL_MS;
/** A worker reported hung and still there this much later (its kill failed or was not made) is reported again. */
const REPORT_AGAIN_MS = 5000;
/** A release that left the znode in place (a candidacy gone meanwhile, a failed read) is asked for again this much later. */
const RELEASE_AGAIN_MS = 1000;
/**
 * Looks further apart than this, by ZooKeeper's clock, start the watch over: ZooKeeper or
 * this gateway stalled in between, so the worker may have had no chance to write.
 */
export const MAX_LOOK_GAP_MS = 4 * LOOK_EVERY_MS;

/**
 * Whether one worker is hung, judged on ZooKeeper's clock alone: its membership znode kept
 * one version while the watchdog's looks — each within MAX_LOOK_GAP_MS of the one before,
 * so ZooKeeper took writes all along — spanned `hungMs`. Neither this gateway's clock nor
 * its delays count, so a gateway that stalls does not fence a healthy worker.
 */
export class HeartbeatJudge {
  private watch: { version: number; since: number; last: number } | null = null;

  constructor(private readonly hungMs: number) {}

  /**
   * One look: ZooKeeper's clock at the watchdog's own write, and the version of the
   * worker's znode as read right after (null: gone). True once the worker is hung, and on
   * every look after until its znode changes.
   */
  judge(clockMs: number, version: number | null): boolean {
    const w = this.watch;
    if (version === null) {
      this.watch = null;
      return false;
    }
    if (!w || w.version !== version || clockMs < w.last || clockMs - w.last > MAX_LOOK_GAP_MS) {
      this.watch = { version, since: clockMs, last: clockMs };
      return false;
    }
    w.last = clockMs;
    return clockMs - w.since >= this.hungMs;
  }
}

/**
 * How long each znode has kept its version on this gateway's own clock, counted from the
 * end of the first read that returned it — so from after the write that made it. Unlike
 * the heartbeat judgement this needs no unbroken chain of looks: a version kept over a
 * stall of this gateway was kept all the same.
 */
export class VersionAges {
  private readonly seen = new Map<string, { version: number; since: number }>();

  /** Records reads that had all completed by `readAt`; returns each znode's age (0 for a new version, null for a gone znode). */
  observe(versions: ReadonlyMap<string, number | null>, readAt: number): Map<string, number | null> {
    for (const node of this.seen.keys()) if (!versions.has(node)) this.seen.delete(node);
    const ages = new Map<string, number | null>();
    for (const [node, version] of versions) {
      const last = this.seen.get(node);
      if (version === null) this.seen.delete(node);
      else if (!last || last.version !== version) this.seen.set(node, { version, since: readAt });
      ages.set(node, version === null ? null : readAt - (this.seen.get(node) as { since: number }).since);
    }
    return ages;
  }

  clear(): void {
    this.seen.clear();
  }
}

/**
 * The orchestrator's watch on the heartbeats of the workers that serve (master and slaves
 * rewrite their membership znodes every MEMBER_UPDATE_INTERVAL_MS). A worker that stops
 * writing — frozen, hung, cut off from ZooKeeper — is reported after `hungMs` (and every
 * REPORT_AGAIN_MS while its znode stays), long before its ZooKeeper session would
 * expire; the orchestrator then kills it through the runtime, and its exit is a crash like
 * any other (docs/architecture.md, *Fencing and leases*).
 */
export class WorkerWatchdog {
  private readonly judges = new Map<string, HeartbeatJudge>();
  private timer: NodeJS.Timeout | null = null;
  /** Bumped by stop: a look in flight from before then schedules no more. */
  private generation = 0;
  /** Znodes reported hung, and when (ZooKeeper's clock). */
  private readonly reported = new Map<string, number>();
  /** The ZooKeeper leader's epoch at the last look: a new leader means a new clock, and every client reconnecting. */
  private leaderEpoch = -1;
  private failing = false;
  private readonly ages = new VersionAges();
  /** Releases asked for, by znode: the version timed and when; asked again RELEASE_AGAIN_MS later if the znode stays. */
  private readonly released = new Map<string, { version: number; at: number }>();

  constructor(
    private readonly zk: Zk,
    private readonly names: ClusterNames,
    /** The membership znode names of the workers to watch, as the cluster view has them. */
    private readonly watched: () => string[],
    private readonly hungMs: number,
    private readonly onHung: (node: string) => Promise<void>,
    /** A master's lease under this gateway's settings: how long a slave must be silent to be released too. */
    private readonly leaseMs: number,
    /** A worker's znode kept `version` past a lease and the margin (schema/messages.ts releaseAfterMs). */
    private readonly onSilentPastLease: (node: string, version: number) => Promise<void>,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.stop();
    this.schedule();
  }

  stop(): void {
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.judges.clear();
    this.ages.clear();
    this.released.clear();
  }

  /**
   * Every watch starts over: ZooKeeper (or this gateway's link to it) failed or changed
   * leader, so workers may have been unable to write and reconnect one by one. Starting
   * the ages over only delays a release.
   */
  private forget(): void {
    this.judges.clear();
    this.ages.clear();
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
  private async stampTime(): Promise<{ clockMs: number; leaderEpoch: number }> {
    try {
      return await this.zk.stampTime(this.names.zkClock);
    } catch (err) {
      if (!(err instanceof ZkError && err.code === 'NO_NODE')) throw err;
      await this.zk.ensure(this.names.zkClock, Buffer.alloc(0));
      return this.zk.stampTime(this.names.zkClock);
    }
  }

  /**
   * Hands over each worker whose znode kept one version past a master's lease and the
   * margin: a master among them has not renewed its lease since, so the orchestrator may
   * remove its membership and candidacy (in a write that checks that version) and the
   * next master be elected without waiting for its session — one the runtime cannot kill
   * (its host lost) or that is not dead yet. A slave so long silent goes the same way, so
   * that it is not next in line when it cannot lead.
   */
  private checkLeases(nodes: string[], read: Array<{ data: Buffer; version: number } | null>, readAt: number): void {
    const ages = this.ages.observe(new Map(nodes.map((node, k) => [node, read[k]?.version ?? null])), readAt);
    for (const node of this.released.keys()) if (!ages.has(node)) this.released.delete(node);
    nodes.forEach((node, k) => {
      const got = read[k];
      const age = ages.get(node);
      if (!got || age === null || age === undefined) return;
      const asked = this.released.get(node);
      if (asked && asked.version === got.version && readAt - asked.at < RELEASE_AGAIN_MS) return;
      const raw = parseJsonOrNull(got.data.toString());
      // A worker of an earlier version renewed its lease by reading: its silence proves nothing.
      if (typeof raw !== 'object' || raw === null || !('leaseMs' in raw)) return;
      const member = memberDataSchema.safeParse(raw);
      if (!member.success) return;
      // An operator's longer HUNG_WORKER_MS holds for workers the runtime could kill too.
      if (age < Math.max(releaseAfterMs(member.data.leaseMs ?? this.leaseMs), this.hungMs)) return;
      this.released.set(node, { version: got.version, at: readAt });
      void this.onSilentPastLease(node, got.version).catch((err: Error) => this.log.error({ err, node }, 'worker watchdog: could not release a silent worker; asking again'));
    });
  }

  private async look(): Promise<void> {
    const nodes = this.watched();
    if (!nodes.length || !this.zk.connected) return this.forget();
    let clockMs: number;
    let versions: Array<number | null>;
    try {
      const stamp = await this.stampTime();
      clockMs = stamp.clockMs;
      // Workers reconnect to a new leader one by one, some later than this gateway: their
      // silence until then is no hang, and the old leader's clock is not this one's.
      if (stamp.leaderEpoch !== this.leaderEpoch) this.forget();
      this.leaderEpoch = stamp.leaderEpoch;
      // Read after the stamp: ZooKeeper then shows every write it stamped earlier.
      const read = await Promise.all(nodes.map((node) => this.zk.getData(`${this.names.zkWorkers}/${node}`)));
      versions = read.map((got) => got?.version ?? null);
      this.checkLeases(nodes, read, performance.now());
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.log.warn({ err }, "worker watchdog: could not read ZooKeeper's clock or the workers' znodes; watching again once it answers");
      this.failing = true;
      return this.forget();
    }
    for (const node of this.judges.keys()) if (!nodes.includes(node)) this.judges.delete(node);
    for (const node of this.reported.keys()) if (!nodes.includes(node)) this.reported.delete(node);
    nodes.forEach((node, k) => {
      let judge = this.judges.get(node);
      if (!judge) this.judges.set(node, (judge = new HeartbeatJudge(this.hungMs)));
      if (!judge.judge(clockMs, versions[k])) return;
      const reportedAt = this.reported.get(node);
      if (reportedAt !== undefined && clockMs - reportedAt < REPORT_AGAIN_MS) return;
      this.reported.set(node, clockMs);
      // Not awaited: a kill through a Docker host that does not answer may take long, and
      // the others must be watched meanwhile.
      void this.onHung(node).catch((err: Error) => this.log.error({ err, node }, 'worker watchdog: could not fence a hung worker'));
    });
  }
}
