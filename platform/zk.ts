import zookeeper, { type Client, type Event } from 'node-zookeeper-client';
import { reconnectDelayMs } from './broker';

/**
 * A promise API over node-zookeeper-client, plus the znode naming both sides rely on:
 * members and election candidates are `<workerId>-<10-digit sequence>`.
 */
export class ZkError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const SEQUENCE_DIGITS = 10;
/** Before a repeatable request lost with the connection is sent again (the client's own reconnect spin). */
const RESEND_DELAY_MS = 200;

/** `w1-0000000007` → { workerId: 'w1', sequence: 7 } */
export function parseSequentialName(name: string): { workerId: string; sequence: number } {
  const cut = name.length - SEQUENCE_DIGITS;
  return { workerId: name.slice(0, cut - 1), sequence: Number(name.slice(cut)) };
}

export function sortBySequence(names: string[]): string[] {
  return [...names].sort((a, b) => parseSequentialName(a).sequence - parseSequentialName(b).sequence);
}

type Watcher = (event: Event) => void;

/** One step of `commitAll`; version -1 matches any version (for `check`: the node exists). */
export type ZkOp =
  { op: 'check'; path: string; version: number } | { op: 'setData'; path: string; data: Buffer; version: number } | { op: 'remove'; path: string; version: number };

function codeOf(err: unknown): string {
  if (err instanceof zookeeper.Exception) return err.getName();
  return 'UNKNOWN';
}

/** A Stat's time field (a big-endian 64-bit count of ms) as a number. */
function msOf(long: Buffer): number {
  return Number(long.readBigInt64BE(0));
}

function settle<T>(resolve: (v: T) => void, reject: (e: Error) => void) {
  return (err: Error | zookeeper.Exception | null, value: T) => {
    if (err) reject(new ZkError(codeOf(err), err.toString()));
    else resolve(value);
  };
}

function connectClient(hosts: string, sessionTimeoutMs: number, connectTimeoutMs: number): Promise<Client> {
  // No retries of a request lost with its connection: the library would send a `create`
  // again that may have been applied (a second sequential znode: a ghost candidacy that
  // never dies with its session), and would wait up to 7 s between tries. Zk.request
  // sends again what is safe to send twice.
  const client = zookeeper.createClient(hosts, { sessionTimeout: sessionTimeoutMs, spinDelay: 200, retries: 0 });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.close();
      reject(new ZkError('CONNECTION_LOSS', `ZooKeeper at ${hosts} did not answer within ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve(client);
    });
    client.connect();
  });
}

export class Zk {
  private current: Client;
  private sessionListeners: Array<(state: zookeeper.State) => void> = [];
  private closed = false;

  private constructor(
    client: Client,
    private readonly hosts: string,
    private readonly requestedSessionMs: number,
    private readonly connectTimeoutMs: number,
  ) {
    this.current = client;
    this.listen(client);
  }

  static async connect(hosts: string, sessionTimeoutMs: number, connectTimeoutMs = 15_000): Promise<Zk> {
    return new Zk(await connectClient(hosts, sessionTimeoutMs, connectTimeoutMs), hosts, sessionTimeoutMs, connectTimeoutMs);
  }

  /** The client of the current session. */
  get client(): Client {
    return this.current;
  }

  /** Told of every state change of the current session's client (and of the next session's, after renewSession). */
  onState(listener: (state: zookeeper.State) => void): void {
    this.sessionListeners.push(listener);
  }

  /**
   * A new session in place of one that expired. Everything the old session held is gone:
   * its ephemeral znodes (presence, candidacies) and its watches. The caller creates and
   * registers them again on this object, which now talks through the new session.
   */
  async renewSession(): Promise<void> {
    const client = await connectClient(this.hosts, this.requestedSessionMs, this.connectTimeoutMs);
    if (this.closed) {
      client.close();
      throw new ZkError('CLOSED', 'closed while a new session was being opened');
    }
    const old = this.current;
    this.current = client;
    this.listen(client);
    old.close();
  }

  close(): void {
    this.closed = true;
    this.current.close();
  }

  /**
   * Runs `arm` (reads that set watches) until it succeeds. A request in flight when the
   * connection to a server drops (that server stopped, the ensemble changed leader) fails
   * with CONNECTION_LOSS although the session lives on; given up, the watch, and what it
   * keeps current, would be gone for good. `failed` hears of each retry. Stops once this
   * object is closed or its session is gone (expired or renewed: the owner re-arms all).
   */
  keepArmed(arm: () => Promise<void>, failed: (err: unknown, retryInMs: number) => void): void {
    const session = this.current;
    const gone = () => this.closed || this.current !== session || session.getState() === zookeeper.State.EXPIRED;
    const attempt = (n: number): void => {
      if (n > 0 && gone()) return;
      arm().catch((err: unknown) => {
        if (gone()) return;
        const wait = reconnectDelayMs(n);
        failed(err, wait);
        setTimeout(() => attempt(n + 1), wait).unref();
      });
    };
    attempt(0);
  }

  private listen(client: Client): void {
    client.on('state', (state) => {
      if (client === this.current) for (const listener of this.sessionListeners) listener(state);
    });
  }

  /**
   * True while the session is linked to a server. False while the client reconnects
   * (its server went away) or after the session expired, when watches no longer fire.
   */
  get connected(): boolean {
    return this.current.getState() === zookeeper.State.SYNC_CONNECTED;
  }

  get sessionTimeoutMs(): number {
    return this.current.getSessionTimeout();
  }

  /**
   * One request, bounded: a request queued while the client is cut off is only sent once
   * it reconnects, and one queued on a session that then expired is never answered. Past
   * twice the session timeout the session is gone either way, so the caller gets
   * OPERATION_TIMEOUT instead of waiting for ever (a reconcile pass, a shutdown).
   * `repeatable` requests (reads, unversioned writes, removals: the same outcome if sent
   * twice) lost with the connection are sent again until then; others fail at once.
   */
  private request<T>(send: (resolve: (value: T) => void, reject: (err: Error) => void) => void, repeatable: boolean): Promise<T> {
    // The server may grant a longer session than asked for (at least two of its ticks).
    const limitMs = 2 * Math.max(this.requestedSessionMs, this.current.getSessionTimeout());
    const deadline = Date.now() + limitMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ZkError('OPERATION_TIMEOUT', `ZooKeeper did not answer within ${limitMs} ms`)), limitMs);
      const attempt = () =>
        send(
          (value) => {
            clearTimeout(timer);
            resolve(value);
          },
          (err) => {
            const lost = err instanceof ZkError && err.code === 'CONNECTION_LOSS';
            if (repeatable && lost && !this.closed && Date.now() + RESEND_DELAY_MS < deadline) {
              setTimeout(attempt, RESEND_DELAY_MS);
              return;
            }
            clearTimeout(timer);
            reject(err);
          },
        );
      attempt();
    });
  }

  mkdirp(path: string): Promise<string> {
    return this.request((resolve, reject) => this.current.mkdirp(path, settle(resolve, reject)), true);
  }

  create(path: string, data: Buffer, mode: number): Promise<string> {
    return this.request((resolve, reject) => this.current.create(path, data, mode, settle(resolve, reject)), false);
  }

  createEphemeral(path: string, data: Buffer): Promise<string> {
    return this.create(path, data, zookeeper.CreateMode.EPHEMERAL);
  }

  createEphemeralSequential(path: string, data: Buffer): Promise<string> {
    return this.create(path, data, zookeeper.CreateMode.EPHEMERAL_SEQUENTIAL);
  }

  /** Creates a persistent node unless it exists. */
  async ensure(path: string, data: Buffer): Promise<void> {
    try {
      await this.create(path, data, zookeeper.CreateMode.PERSISTENT);
    } catch (err) {
      if (!(err instanceof ZkError && err.code === 'NODE_EXISTS')) throw err;
    }
  }

  getChildren(path: string, watcher?: Watcher): Promise<string[]> {
    return this.request((resolve, reject) => {
      if (watcher) this.current.getChildren(path, watcher, settle(resolve, reject));
      else this.current.getChildren(path, settle(resolve, reject));
    }, true);
  }

  /** null when the node does not exist. `owner`: the session of an ephemeral node (hex), else all zeros. */
  getData(path: string, watcher?: Watcher): Promise<{ data: Buffer; version: number; owner: string } | null> {
    return this.request((resolve, reject) => {
      const done = (err: Error | zookeeper.Exception | null, data: Buffer, stat: zookeeper.Stat) => {
        if (err && codeOf(err) === 'NO_NODE') resolve(null);
        else if (err) reject(new ZkError(codeOf(err), err.toString()));
        else resolve({ data, version: stat.version, owner: stat.ephemeralOwner.toString('hex') });
      };
      if (watcher) this.current.getData(path, watcher, done);
      else this.current.getData(path, done);
    }, true);
  }

  setData(path: string, data: Buffer, version = -1): Promise<number> {
    // A versioned write sent twice would fail the second time (BAD_VERSION) after it won.
    return this.request(
      (resolve, reject) =>
        this.current.setData(path, data, version, (err, stat) => {
          if (err) reject(new ZkError(codeOf(err), err.toString()));
          else resolve(stat.version);
        }),
      version === -1,
    );
  }

  /**
   * Writes an empty value to an existing node and returns the ZooKeeper leader's clock at
   * that write (ms) — the time every other write's `mtime` is stamped with, free of this
   * process's own clock and of its delays — and the leader's epoch (the upper half of the
   * write's zxid), which changes with the leader and so with the clock.
   */
  stampTime(path: string): Promise<{ clockMs: number; leaderEpoch: number }> {
    return this.request(
      (resolve, reject) =>
        this.current.setData(path, Buffer.alloc(0), -1, (err, stat) => {
          if (err) reject(new ZkError(codeOf(err), err.toString()));
          else resolve({ clockMs: msOf(stat.mtime), leaderEpoch: stat.mzxid.readUInt32BE(0) });
        }),
      true,
    );
  }

  /**
   * Applies every op or none (ZooKeeper's multi). Rejects with the first failing op's
   * code: NO_NODE for a checked or removed node that is gone, BAD_VERSION for one written
   * since. Not sent again after a lost connection: it may have been applied.
   */
  commitAll(ops: readonly ZkOp[]): Promise<void> {
    return this.request((resolve, reject) => {
      const transaction = this.current.transaction();
      // node-zookeeper-client 1.1.3 sends a multi op's version 0 as -1 (any version):
      // set each op's version again after the client built it.
      const built = (transaction as unknown as { ops: Array<{ version?: number }> }).ops;
      for (const op of ops) {
        if (op.op === 'check') transaction.check(op.path, op.version);
        else if (op.op === 'setData') transaction.setData(op.path, op.data, op.version);
        else transaction.remove(op.path, op.version);
        built[built.length - 1].version = op.version;
      }
      transaction.commit((err) => {
        if (err) reject(new ZkError(codeOf(err), err.toString()));
        else resolve();
      });
    }, false);
  }

  /** True if the node exists; the watcher fires on its next change (including deletion). */
  exists(path: string, watcher?: Watcher): Promise<boolean> {
    return this.request((resolve, reject) => {
      const done = (err: Error | zookeeper.Exception | null, stat: zookeeper.Stat | null) => {
        if (err) reject(new ZkError(codeOf(err), err.toString()));
        else resolve(Boolean(stat));
      };
      if (watcher) this.current.exists(path, watcher, done);
      else this.current.exists(path, done);
    }, true);
  }

  /** Removes a node; a node already gone is not an error. */
  remove(path: string): Promise<void> {
    return this.request(
      (resolve, reject) =>
        this.current.remove(path, (err) => {
          if (err && codeOf(err) !== 'NO_NODE') reject(new ZkError(codeOf(err), err.toString()));
          else resolve();
        }),
      true,
    );
  }

  async removeRecursive(path: string): Promise<void> {
    let children: string[];
    try {
      children = await this.getChildren(path);
    } catch (err) {
      if (err instanceof ZkError && err.code === 'NO_NODE') return;
      throw err;
    }
    await Promise.all(children.map((c) => this.removeRecursive(`${path}/${c}`)));
    await this.remove(path);
  }

  /**
   * Advances a counter node with a versioned write, so two contenders never both get
   * the same value. Returns the new value.
   */
  async increment(path: string): Promise<number> {
    for (;;) {
      const current = await this.getData(path);
      if (!current) throw new ZkError('NO_NODE', `${path} does not exist`);
      const next = Number(current.data.toString() || '0') + 1;
      try {
        await this.setData(path, Buffer.from(String(next)), current.version);
        return next;
      } catch (err) {
        if (!(err instanceof ZkError && err.code === 'BAD_VERSION')) throw err;
      }
    }
  }
}

export const ZkState = zookeeper.State;
