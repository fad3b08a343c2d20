import { encode, MEMBER_UPDATE_INTERVAL_MS, memberDataSchema, parseJsonOrNull, type ClusterNames, type MemberData } from '../schema';
import { runForLeadership, ZkError, ZkState, type Logger, type Zk } from '../platform';

/**
 * This worker's presence in ZooKeeper: its membership znode (kept current, throttled),
 * its candidacy in the election, and fail-stop when the session is lost.
 */
export class Coordination {
  private memberPath: string | null = null;
  /** This worker's election znode, once it leads. */
  private candidacyPath: string | null = null;
  private member: MemberData;
  private published = '';
  private updateTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly zk: Zk,
    private readonly names: ClusterNames,
    initial: MemberData,
    /** Where the replica stands; read on every tick rather than pushed by the caller. */
    private readonly progress: () => Pick<MemberData, 'appliedSeq' | 'epoch'>,
    private readonly log: Logger,
    private readonly failStop: (reason: string) => void,
  ) {
    this.member = initial;
    this.watchSession();
  }

  private watchSession(): void {
    let lostTimer: NodeJS.Timeout | null = null;
    this.zk.onState((state) => {
      if (this.closed) return;
      if (state === ZkState.EXPIRED) this.failStop('ZooKeeper session expired');
      else if (state === ZkState.DISCONNECTED) {
        // The server expires the session after its timeout; we cannot learn that while
        // cut off, so assume the worst at the same moment.
        lostTimer = setTimeout(() => this.failStop('ZooKeeper unreachable for a whole session timeout'), this.zk.sessionTimeoutMs);
      } else if (state === ZkState.SYNC_CONNECTED && lostTimer) {
        clearTimeout(lostTimer);
        lostTimer = null;
      }
    });
  }

  async register(): Promise<void> {
    await this.zk.mkdirp(this.names.zkWorkers);
    await this.zk.mkdirp(this.names.zkElection);
    await this.zk.ensure(this.names.zkEpoch, Buffer.from('0'));
    this.published = JSON.stringify(this.member);
    this.memberPath = await this.zk.createEphemeralSequential(`${this.names.zkWorkers}/${this.member.id}-`, encode(this.member));
    this.updateTimer = setInterval(() => void this.flush(), MEMBER_UPDATE_INTERVAL_MS);
  }

  /** Publishes a role change at once (seq progress goes out on the next tick). */
  async setRole(role: MemberData['role']): Promise<void> {
    this.member = { ...this.member, role };
    await this.flush();
  }

  /** The membership data with the replica's progress as of now, as written to the znode. */
  private currentBody(): string {
    this.member = { ...this.member, ...this.progress() };
    return JSON.stringify(this.member);
  }

  private async flush(): Promise<void> {
    const body = this.currentBody();
    // A serving worker writes on every tick, changed or not: its heartbeat.
    const beat = this.member.role !== 'STARTING';
    if (!this.memberPath || (body === this.published && !beat) || this.closed) return;
    this.published = body;
    try {
      await this.zk.setData(this.memberPath, Buffer.from(body));
    } catch (err) {
      // Removed under a live session: the orchestrator judged this worker gone (silent past
      // a lease, gateway/silentWorkerRelease.ts). It must not serve on unregistered.
      if (err instanceof ZkError && err.code === 'NO_NODE' && !this.closed) return this.failStop('membership znode removed: this worker was judged gone');
      // Sent again on the next tick, even if nothing changes before it.
      if (this.published === body) this.published = '';
      this.log.warn({ err }, 'could not update membership znode');
    }
  }

  /** Every registered worker's membership data, as ZooKeeper has it now. */
  private async members(): Promise<MemberData[]> {
    const children = await this.zk.getChildren(this.names.zkWorkers);
    const found: MemberData[] = [];
    for (const child of children) {
      const node = await this.zk.getData(`${this.names.zkWorkers}/${child}`);
      if (!node) continue;
      const parsed = memberDataSchema.safeParse(parseJsonOrNull(node.data.toString()));
      if (parsed.success) found.push(parsed.data);
    }
    return found;
  }

  /** The master's advertised applied seq, or null when there is no master. */
  async masterAppliedSeq(): Promise<number | null> {
    return (await this.members()).find((m) => m.role === 'MASTER')?.appliedSeq ?? null;
  }

  /** Joins the master election (platform/election.ts); a lost candidacy stops the worker. */
  async runForLeader(onElected: () => Promise<void>): Promise<void> {
    await runForLeadership(this.zk, this.names.zkElection, this.member.id, {
      onElected: (node) => {
        this.candidacyPath = `${this.names.zkElection}/${node}`;
        return onElected();
      },
      onLost: (reason) => {
        if (!this.closed) this.failStop(reason);
      },
      onWaiting: (predecessor) => this.log.debug({ watching: predecessor }, 'waiting behind predecessor'),
      onRetry: (err, retryInMs) => this.log.warn({ err, retryInMs }, 'election check failed; retrying'),
    });
  }

  /** Published from now on: the orchestrator learns from it when this master's lease has surely lapsed. */
  holdLease(leaseMs: number): void {
    this.member = { ...this.member, leaseMs };
  }

  /**
   * Renews the master's lease (worker/lease.ts): writes the membership znode on condition
   * that this worker's candidacy still exists, in one multi. False when it does not.
   */
  async proveLeadership(): Promise<boolean> {
    if (!this.memberPath || !this.candidacyPath) throw new Error('proveLeadership before registering and being elected');
    const body = this.currentBody();
    try {
      await this.zk.commitAll([
        { op: 'check', path: this.candidacyPath, version: -1 },
        { op: 'setData', path: this.memberPath, data: Buffer.from(body), version: -1 },
      ]);
    } catch (err) {
      // Either znode gone: the candidacy was removed, or the session with it.
      if (err instanceof ZkError && err.code === 'NO_NODE') return false;
      throw err;
    }
    this.published = body;
    return true;
  }

  /** Advances the cluster epoch with a versioned write (no two masters share one). */
  advanceEpoch(): Promise<number> {
    return this.zk.increment(this.names.zkEpoch);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.updateTimer) clearInterval(this.updateTimer);
    this.zk.close();
  }
}
