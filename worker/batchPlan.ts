import type { RpcReply, WriteRequest } from '../schema';

/**
 * The master's first step on a batch, without a database: which writes already have an
 * answer, which repeat a request id earlier in the batch, and which run, grouped as the
 * master resolves them. Seqs are not planned here: a write whose rules fail takes none,
 * and only resolving (step two, worker/master.ts) finds that out.
 */

/** A write decoded from WriteQ, and later its answer. */
export interface WriteJob {
  kind: 'write';
  replyTo?: string;
  request: WriteRequest;
  reply?: RpcReply;
}
/** What stood for the writes of a WriteQ message that could not be decoded: answered at once. */
export interface UndecodedJob {
  kind: 'undecoded';
  replyTo?: string;
  reply: RpcReply;
}
export type Job = WriteJob | UndecodedJob;

/** What `_dbaas_log` holds for a request id applied before. */
export interface LoggedWrite {
  result: unknown;
  seq: number;
  fingerprint: string | null;
}

export type EarlierAnswer =
  /** Applied before: the same answer again. */
  | { kind: 'logged'; logged: LoggedWrite }
  /** The request id (a client's Idempotency-Key) came before with other arguments. */
  | { kind: 'keyReused' };

export interface BatchPlan {
  answered: Array<{ job: WriteJob; answer: EarlierAnswer }>;
  /** Consecutive writes of one operation, in arrival order; longer than one only where the operation resolves many at once. */
  runs: Array<{ op: string; jobs: WriteJob[] }>;
  /** Repeats of a request id first seen earlier in this batch: they get that write's answer. */
  followers: Array<{ job: WriteJob; leader: WriteJob }>;
}

export function planBatch(jobs: readonly WriteJob[], logged: ReadonlyMap<string, LoggedWrite>, resolvesMany: (op: string) => boolean): BatchPlan {
  const plan: BatchPlan = { answered: [], runs: [], followers: [] };
  const leaders = new Map<string, WriteJob>();
  for (const job of jobs) {
    const { requestId, fingerprint = null } = job.request;
    const before = logged.get(requestId);
    const leader = leaders.get(requestId);
    const earlierFingerprint = before ? before.fingerprint : leader ? (leader.request.fingerprint ?? null) : undefined;
    if (earlierFingerprint !== undefined && earlierFingerprint !== fingerprint) plan.answered.push({ job, answer: { kind: 'keyReused' } });
    else if (before) plan.answered.push({ job, answer: { kind: 'logged', logged: before } });
    else if (leader) plan.followers.push({ job, leader });
    else {
      leaders.set(requestId, job);
      const last = plan.runs.at(-1);
      if (last && last.op === job.request.op && resolvesMany(last.op)) last.jobs.push(job);
      else plan.runs.push({ op: job.request.op, jobs: [job] });
    }
  }
  return plan;
}
