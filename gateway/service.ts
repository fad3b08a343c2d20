import { DEFAULT_PAGES, pageSize, type PageSettings } from './pages';
import {
  badInput,
  checkArgs,
  parseArgs,
  unavailable,
  passwordSchema,
  type FieldSelection,
  type ReadArgs,
  type ReadOpName,
  type ReadResult,
  type RideRecord,
  type UserRecord,
  type WriteArgs,
  type WriteOpName,
  type WriteResult,
} from '../schema';
import { createHash, createHmac } from 'node:crypto';
import { hashPassword } from './passwords';
import type { MutationRateLimit } from './rateLimit';
import type { ReadAnswer, ReadOptions, WriteAnswer, WriteIdentity } from './rpcClient';
import { answerDependencies } from './readCache/dependencies';
import { cacheClock, hasExpired, keptAnswerOf, type ReadCache } from './readCache/readCache';

/**
 * How long a read the cache could answer waits for this gateway's log reader to reach the
 * position it needs (usually a write just acknowledged, a millisecond or two from the
 * reader) before it goes to a replica instead.
 */
const CACHE_WAIT_MS = 20;

/** How the service reaches the data: the RPC client in the gateway (or a direct pool in benchmarks). */
export interface Transport {
  /** Highest seq this process saw committed. */
  readonly lastSeq: number;
  read<N extends ReadOpName>(op: N, args: ReadArgs<N>, options: ReadOptions): Promise<ReadAnswer<ReadResult<N>>>;
  write<N extends WriteOpName>(op: N, args: WriteArgs<N>, identity?: WriteIdentity): Promise<WriteAnswer<WriteResult<N>>>;
}

/** Per API request: the consistency it asked for and what answered it. */
export interface RequestContext {
  /** From X-DBaaS-Min-Seq; the gateway's own last seq is the floor anyway. */
  clientMinSeq: number;
  consistency: 'strong' | 'eventual';
  isAdmin: boolean;
  /** The client's address, for the per-address write limit. */
  clientAddress: string;
  /** From Idempotency-Key: makes the request's writes exactly-once across client retries. */
  idempotencyKey?: string;
  /** `writes` counts the request's writes, so each write of a keyed request has its own id; `cached`: answered by the read cache. */
  trace: { seq?: number; workers: Set<string>; writes: number; cached?: boolean };
}

export function newRequestContext(partial: Partial<Omit<RequestContext, 'trace'>> = {}): RequestContext {
  return { clientMinSeq: 0, consistency: 'strong', isAdmin: false, clientAddress: '', ...partial, trace: { workers: new Set(), writes: 0 } };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * A keyed write's identity. The request id is a digest of the key and the write's place
 * in the request (a GraphQL document may hold several mutations, run in order), so it
 * has a fixed length and cannot meet a gateway's UUIDs. The fingerprint covers what the
 * client sent (before the password is salted), so a retry matches and any change does not;
 * it is an HMAC keyed by the client's key, which is stored nowhere, so the log never holds
 * an unsalted digest of a password.
 */
export function writeIdentity(key: string, ordinal: number, op: string, clientArgs: unknown): WriteIdentity {
  return {
    requestId: `k:${sha256(`${ordinal}:${key}`)}`,
    fingerprint: createHmac('sha256', key)
      .update(`${op}:${JSON.stringify(clientArgs)}`)
      .digest('hex'),
  };
}

/**
 * The rideshare operations as both GraphQL and REST see them: validation against the
 * catalogue, then one RPC. No rule lives anywhere else.
 */
/**
 * Reads whose arguments the gateway builds itself — the selection planner's (held to what a
 * worker accepts by test/unit/selectionPlanner.test.ts) and live snapshots' fixed
 * selections — and the worker validates on arrival. Checking them here as well was ~7 % of
 * the gateway's CPU per compiled read.
 */
const PLANNED_READS: ReadonlySet<ReadOpName> = new Set(['selection', 'selectionAt']);

/** Told of every RPC: the autoscaler counts reads, the metrics time them. */
export interface ServiceObserver {
  noteRead(): void;
  noteRpc?(kind: 'read' | 'write', op: string, seconds: number, errorCode: string | null): void;
}

/**
 * Bounds on reads that wait for a log position the client named (X-DBaaS-Min-Seq): each
 * holds a connection and, on the slaves, a share of the reads in flight.
 */
export interface PositionWaits {
  /** The newest seq this gateway knows of (its own writes, the workers' reports). */
  headSeq(): number;
  /** The least every read of this gateway must reflect: the first master's position it saw (clusterView.startSeq). */
  startSeq(): number;
  /** How far past headSeq a client may ask: reports reach the gateway 250 ms late. */
  lookahead: number;
  /** Reads waiting for a position past headSeq at once; more are UNAVAILABLE. */
  maxWaiting: number;
}

export class RideService {
  private waiting = 0;

  constructor(
    private readonly rpc: Transport,
    private readonly observer: ServiceObserver,
    private readonly writeLimit?: MutationRateLimit,
    private readonly waits: PositionWaits = { headSeq: () => rpc.lastSeq, startSeq: () => 0, lookahead: Number.MAX_SAFE_INTEGER, maxWaiting: Number.MAX_SAFE_INTEGER },
    readonly pages: PageSettings = DEFAULT_PAGES,
    private readonly readCache?: ReadCache,
  ) {}

  private async timed<T>(kind: 'read' | 'write', op: string, call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    let code: string | null = null;
    try {
      return await call();
    } catch (err) {
      code = (err as { code?: string }).code ?? 'INTERNAL_SERVER_ERROR';
      throw err;
    } finally {
      this.observer.noteRpc?.(kind, op, (performance.now() - started) / 1000, code);
    }
  }

  get lastSeq(): number {
    return this.rpc.lastSeq;
  }

  /** The log position a read must reflect: the client's X-DBaaS-Min-Seq and this gateway's own writes. */
  private minSeqOf(ctx: RequestContext): number {
    return ctx.consistency === 'eventual' ? 0 : Math.max(ctx.clientMinSeq, this.rpc.lastSeq, this.waits.startSeq());
  }

  /** `counted`: false when the caller has counted the request already (the read cache's path). */
  private async read<N extends ReadOpName>(ctx: RequestContext, op: N, args: ReadArgs<N>, label: string = op, counted = true): Promise<ReadResult<N>> {
    if (!PLANNED_READS.has(op)) checkArgs('read', op, args);
    if (counted) this.observer.noteRead();
    const minSeq = this.minSeqOf(ctx);
    const head = Math.max(this.rpc.lastSeq, this.waits.headSeq());
    if (minSeq <= head) return this.readAt(ctx, op, args, label, minSeq);
    if (minSeq > head + this.waits.lookahead) throw badInput(`no such log position yet: X-DBaaS-Min-Seq is ${minSeq}, the log is at ${head}`);
    if (this.waiting >= this.waits.maxWaiting) throw unavailable(`too many reads are waiting for log positions (${this.waits.maxWaiting}); retry shortly`);
    this.waiting++;
    try {
      return await this.readAt(ctx, op, args, label, minSeq);
    } finally {
      this.waiting--;
    }
  }

  private async readAt<N extends ReadOpName>(ctx: RequestContext, op: N, args: ReadArgs<N>, label: string, minSeq: number): Promise<ReadResult<N>> {
    const answer = await this.timed('read', label, () => this.rpc.read(op, args, { minSeq, consistency: ctx.consistency }));
    ctx.trace.workers.add(answer.workerId);
    return answer.result;
  }

  /** `limited`: the caller has taken this write's share of the per-address limit already. */
  private async write<N extends WriteOpName>(ctx: RequestContext, op: N, args: WriteArgs<N>, clientArgs: unknown = args, limited = false): Promise<WriteResult<N>> {
    checkArgs('write', op, args);
    const identity = ctx.idempotencyKey === undefined ? undefined : writeIdentity(ctx.idempotencyKey, ctx.trace.writes, op, clientArgs);
    ctx.trace.writes += 1;
    if (!limited) await this.writeLimit?.take(ctx.clientAddress);
    const answer = await this.timed('write', op, () => this.rpc.write(op, args, identity));
    ctx.trace.workers.add(answer.workerId);
    ctx.trace.seq = Math.max(ctx.trace.seq ?? 0, answer.seq);
    return answer.result;
  }

  areas(ctx: RequestContext) {
    return this.read(ctx, 'areas', {});
  }
  /** One page of users by username, after the username `after`. */
  users(ctx: RequestContext, page: { first?: number | null; after?: string | null } = {}) {
    return this.read(ctx, 'users', { first: pageSize(page.first, this.pages), after: page.after });
  }
  user(ctx: RequestContext, username: string) {
    return this.read(ctx, 'user', { username });
  }
  userRides(ctx: RequestContext, username: string) {
    return this.read(ctx, 'userRides', { username });
  }
  /** One page of a route's rides by timestamp then id, after the `Ride.cursor` `after`. */
  rides(ctx: RequestContext, source: number, destination: number, upcomingOnly = true, page: { first?: number | null; after?: string | null } = {}) {
    return this.read(ctx, 'rides', { source, destination, upcomingOnly, first: pageSize(page.first, this.pages), after: page.after });
  }
  ride(ctx: RequestContext, id: number) {
    return this.read(ctx, 'ride', { id });
  }
  /**
   * A whole query's data in one read (one snapshot): the `data` object as JSON text. From
   * the read cache when it holds the answer at the position the request needs (no older
   * than the log as this gateway and its workers know it), else from a replica. `key` is
   * the cache's key for `fields` (answerKey of their JSON), made once per plan by the caller.
   */
  async selection(ctx: RequestContext, fields: FieldSelection[], key: string): Promise<string> {
    // Labelled by what was asked (e.g. `ride+user`), like the fixed operations.
    const label = [...new Set(fields.map((f) => f.field))].sort().join('+');
    const cache = this.readCache;
    if (!cache) return this.read(ctx, 'selection', { fields }, label);
    const minSeq = this.minSeqOf(ctx);
    // Every request counts, whoever answers it: the contract sizes slaves by read requests
    // (READS_PER_SLAVE), hits and shared reads included.
    this.observer.noteRead();
    // Only answers with dependencies are ever kept, so a hit needs no analysis.
    const cached = await cache.lookup(key, Math.max(minSeq, this.waits.headSeq()), CACHE_WAIT_MS);
    if (cached !== undefined) {
      ctx.trace.cached = true;
      return cached;
    }
    const dependsOn = answerDependencies(fields);
    if (!dependsOn) return this.read(ctx, 'selection', { fields }, label, false);
    const readAndKeep = async (c: RequestContext) => {
      const sentAt = cacheClock();
      const answer = keptAnswerOf(await this.read(c, 'selectionAt', { fields }, label, false), sentAt);
      cache.store(key, answer, dependsOn);
      return { answer, workerId: [...c.trace.workers].at(-1) };
    };
    const { result, joined } = cache.shared(key, () => readAndKeep(ctx));
    if (!joined) return (await result).answer.data;
    // Another request's read, which may have been asked before writes this one must see, or
    // before a ride it lists departed (its answer is as of a moment before this request).
    const theirs = await result.catch(() => null);
    if (!theirs || theirs.answer.seq < minSeq || hasExpired(theirs.answer.expiresAt, cacheClock())) return (await readAndKeep(ctx)).answer.data;
    if (theirs.workerId) ctx.trace.workers.add(theirs.workerId);
    return theirs.answer.data;
  }
  /** The same with the log position it was read at: where a live subscription's changes start. */
  selectionAt(ctx: RequestContext, fields: FieldSelection[]) {
    return this.read(ctx, 'selectionAt', { fields }, 'liveSnapshot');
  }
  rideCount(ctx: RequestContext) {
    return this.read(ctx, 'rideCount', {});
  }

  async createUser(ctx: RequestContext, username: string, password: string): Promise<UserRecord> {
    parseArgs(passwordSchema, password);
    // The limit first: a refused request must not cost a hash (~50 ms of the libuv pool).
    await this.writeLimit?.take(ctx.clientAddress);
    return this.write(ctx, 'createUser', { username, passwordHash: await hashPassword(password) }, { username, password: password.toLowerCase() }, true);
  }
  deleteUser(ctx: RequestContext, username: string) {
    return this.write(ctx, 'deleteUser', { username });
  }
  createRide(ctx: RequestContext, ride: { createdBy: string; timestamp: string; source: number; destination: number }): Promise<RideRecord> {
    return this.write(ctx, 'createRide', ride);
  }
  joinRide(ctx: RequestContext, rideId: number, username: string) {
    return this.write(ctx, 'joinRide', { rideId, username });
  }
  deleteRide(ctx: RequestContext, rideId: number) {
    return this.write(ctx, 'deleteRide', { rideId });
  }
  clearDatabase(ctx: RequestContext) {
    return this.write(ctx, 'clearDatabase', {});
  }
}
