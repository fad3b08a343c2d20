import { EventEmitter } from 'node:events';
import { NO_ORCHESTRATOR, parseOrchestratorRecord, type OrchestratorRecord } from './orchestratorElection';
import { memberDataSchema, parseJsonOrNull, type ClusterEventRecord, type ClusterNames, type MemberData, type WorkerRecord } from '../schema';
import { ZkError, type Logger, type Zk } from '../platform';

/**
 * The gateway's live picture of the cluster, from ZooKeeper watches on the membership
 * znodes and the epoch. Emits 'event' (ClusterEventRecord) on join, leave and election.
 */
export class ClusterView extends EventEmitter {
  private members = new Map<string, MemberData>();
  epoch = 0;
  /** The gateway that orchestrates, as the last election recorded it. */
  orchestrator: OrchestratorRecord = NO_ORCHESTRATOR;
  private closed = false;
  private firstMasterSeq = 0;

  constructor(
    private readonly zk: Zk,
    private readonly names: ClusterNames,
    private readonly log: Logger,
  ) {
    super();
  }

  async start(): Promise<void> {
    await this.zk.mkdirp(this.names.zkWorkers);
    await this.zk.mkdirp(this.names.zkElection);
    await this.zk.ensure(this.names.zkEpoch, Buffer.from('0'));
    await this.zk.ensure(this.names.zkOrchestratorEpoch, Buffer.from(JSON.stringify(NO_ORCHESTRATOR)));
    // Every member's data is watched again: after a new ZooKeeper session (gateway/zkSession.ts)
    // the watches of the old one are gone, known members included.
    await Promise.all([this.watchMembers(true), this.watchEpoch(), this.watchOrchestrator()]);
  }

  close(): void {
    this.closed = true;
  }

  workers(): WorkerRecord[] {
    return [...this.members.values()].map(toWorker).sort((a, b) => a.pid - b.pid);
  }

  /**
   * Where the first master this gateway saw stood then: every write acknowledged before
   * this gateway started is at or below it, so reads never go below it (a restarted
   * gateway knows none of the writes acknowledged before it). 0 until a master is seen.
   */
  get startSeq(): number {
    return this.firstMasterSeq;
  }

  /** The highest seq any worker reports having applied (asked on every read: no copies). */
  headSeq(): number {
    let head = 0;
    for (const m of this.members.values()) head = Math.max(head, m.appliedSeq);
    return head;
  }

  master(): WorkerRecord | null {
    return this.workers().find((w) => w.role === 'MASTER') ?? null;
  }

  slaves(): WorkerRecord[] {
    return this.workers().filter((w) => w.role === 'SLAVE');
  }

  /** Membership znode names of the workers that serve (master and slaves; not those starting). */
  servingNodes(): string[] {
    return [...this.members.entries()].filter(([, m]) => m.role !== 'STARTING').map(([node]) => node);
  }

  /** The worker a membership znode announces, as last read. */
  memberAt(node: string): WorkerRecord | null {
    const m = this.members.get(node);
    return m ? toWorker(m) : null;
  }

  /** Membership znode names of a worker (normally one). */
  nodesOf(workerId: string): string[] {
    return [...this.members.entries()].filter(([, m]) => m.id === workerId).map(([node]) => node);
  }

  private emitEvent(event: Omit<ClusterEventRecord, 'at'>): void {
    this.emit('event', { at: new Date().toISOString(), ...event } satisfies ClusterEventRecord);
  }

  /**
   * One callback per watched path, made once: the client merges a watcher set again with
   * the same function, so a retried or repeated read never doubles the reads that follow.
   */
  private readonly memberListWatcher = this.rearm('member list', () => this.watchMembers());
  private readonly memberWatchers = new Map<string, () => void>();
  private readonly orchestratorWatcher = this.rearm('orchestrator', () => this.watchOrchestrator());
  private readonly epochWatcher = this.rearm('epoch', () => this.watchEpoch());

  private memberWatcher(node: string): () => void {
    let watcher = this.memberWatchers.get(node);
    if (!watcher) {
      watcher = this.rearm('member data', () => this.watchMember(node));
      this.memberWatchers.set(node, watcher);
    }
    return watcher;
  }

  /** A watch's callback: reads again and sets the next watch, retrying a lost request. */
  private rearm(what: string, arm: () => Promise<void>): () => void {
    return () =>
      this.zk.keepArmed(arm, (err, retryInMs) => {
        if (!this.closed) this.log.warn({ err, retryInMs }, `cluster view: watching the ${what} failed; retrying`);
      });
  }

  private async watchMembers(everyMember = false): Promise<void> {
    if (this.closed) return;
    const children = await this.zk.getChildren(this.names.zkWorkers, this.memberListWatcher);
    const present = new Set(children);
    for (const [node, member] of this.members) {
      if (present.has(node)) continue;
      this.members.delete(node);
      this.memberWatchers.delete(node);
      this.emitEvent({ type: 'WORKER_LEFT', workerId: member.id, pid: member.pid, epoch: this.epoch });
    }
    await Promise.all(children.filter((c) => everyMember || !this.members.has(c)).map((c) => this.watchMember(c)));
  }

  private async watchMember(node: string): Promise<void> {
    if (this.closed) return;
    const path = `${this.names.zkWorkers}/${node}`;
    let got;
    try {
      got = await this.zk.getData(path, this.memberWatcher(node));
    } catch (err) {
      if (err instanceof ZkError && err.code === 'NO_NODE') return;
      throw err;
    }
    if (!got) {
      this.memberWatchers.delete(node);
      return;
    }
    const parsed = memberDataSchema.safeParse(parseJsonOrNull(got.data.toString()));
    if (!parsed.success) {
      this.log.warn({ node }, 'unreadable membership znode');
      return;
    }
    const before = this.members.get(node);
    this.members.set(node, parsed.data);
    if (parsed.data.role === 'MASTER' && this.firstMasterSeq === 0) this.firstMasterSeq = parsed.data.appliedSeq;
    if (!before) this.emitEvent({ type: 'WORKER_JOINED', workerId: parsed.data.id, pid: parsed.data.pid, epoch: this.epoch });
    if (parsed.data.role === 'MASTER' && before?.role !== 'MASTER') {
      this.emitEvent({ type: 'LEADER_ELECTED', workerId: parsed.data.id, pid: parsed.data.pid, epoch: parsed.data.epoch });
    }
  }

  private async watchOrchestrator(): Promise<void> {
    if (this.closed) return;
    const got = await this.zk.getData(this.names.zkOrchestratorEpoch, this.orchestratorWatcher);
    const record = got ? parseOrchestratorRecord(got.data.toString()) : null;
    if (!record || record.epoch === this.orchestrator.epoch) return;
    this.orchestrator = record;
    if (record.gatewayId) this.emitEvent({ type: 'ORCHESTRATOR_ELECTED', gatewayId: record.gatewayId, epoch: record.epoch });
  }

  private async watchEpoch(): Promise<void> {
    if (this.closed) return;
    const got = await this.zk.getData(this.names.zkEpoch, this.epochWatcher);
    if (got) this.epoch = Number(got.data.toString() || '0');
  }
}

function toWorker(m: MemberData): WorkerRecord {
  return { id: m.id, pid: m.pid, containerId: m.containerId, host: m.host, role: m.role, appliedSeq: m.appliedSeq, startedAt: m.startedAt };
}
