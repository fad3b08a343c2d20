import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import {
  checkSocketPath,
  DEDICATED_PORT,
  isRunning,
  lockFilePid,
  runningPostmaster,
  socketServerUrl,
  stopPostmaster,
  workerStoragePaths,
  type Logger,
  type WorkerStoragePaths,
} from '../platform';
import { findPostgresBinaries, systemUser, type PostgresBinaries } from './postgresInstall';

/** How often the instance is checked: the bound on noticing it died or lost its directory. */
const WATCH_INTERVAL_MS = 250;
/** Crash recovery replays the WAL since the last checkpoint; minutes of writes fit in this. */
const READY_TIMEOUT_MS = 60_000;
/** A postgres that exits at once is retried: the backends of a killed predecessor may still hold its shared memory. */
const START_ATTEMPTS = 5;
const START_RETRY_MS = 1000;
/** How long an orphaned postmaster gets to exit after SIGQUIT (it waits for its backends). */
const ORPHAN_STOP_MS = 3000;

/**
 * Settings of every dedicated instance, on the command line so a predecessor's running
 * instance (reused after a worker crash) was started with the same. Unix socket only:
 * no port to allocate, and only the directory's owner (and root) can connect.
 */
const SERVER_SETTINGS = [
  // Empty: no TCP at all (an argument, not a shell word, so no quotes).
  'listen_addresses=',
  `port=${DEDICATED_PORT}`,
  'unix_socket_permissions=0700',
  // The worker's pool (10) plus snapshots, migrations and an operator's psql.
  'max_connections=30',
  // One replica of a small database; PostgreSQL's 128 MB default is for a whole server.
  'shared_buffers=32MB',
  // The worker image carries no LLVM; nothing here is long enough to gain from JIT.
  'jit=off',
  'log_checkpoints=off',
  'timezone=UTC',
  'log_timezone=UTC',
];

export interface OwnPostgresOptions {
  dataRoot: string;
  cluster: string;
  workerId: string;
  log: Logger;
  /**
   * Called once if the instance dies or its data directory goes away while the worker
   * runs: the worker must fail-stop (its replacement starts a new instance, or recreates
   * the directory and catches up from the log or a snapshot).
   */
  onLost: (reason: string) => void;
}

/**
 * The worker's own PostgreSQL (WORKER_STORAGE=dedicated): initdb'd on first start under
 * `<dataRoot>/<cluster>/<workerId>/`, started unless a postmaster already serves that
 * directory (a predecessor killed with SIGKILL leaves its instance running), and watched
 * while the worker runs. The same code runs in a process and in a container.
 */
export class OwnPostgres {
  private watch: NodeJS.Timeout | null = null;
  private stopping = false;
  private lost = false;

  private constructor(
    private readonly paths: WorkerStoragePaths,
    private readonly pid: number,
    private readonly options: OwnPostgresOptions,
  ) {}

  /** Server URL (database `postgres`) over the instance's unix socket. */
  get serverUrl(): string {
    return socketServerUrl(this.paths.socketDir);
  }

  static async start(options: OwnPostgresOptions): Promise<OwnPostgres> {
    const { log } = options;
    const paths = workerStoragePaths(options.dataRoot, options.cluster, options.workerId);
    checkSocketPath(paths.socketDir);
    const binaries = findPostgresBinaries();
    // PostgreSQL refuses to run as root; a non-root worker runs it as itself.
    const owner = process.getuid?.() === 0 ? systemUser('postgres') : null;
    prepareWorkerDir(paths, owner);
    if (!fs.existsSync(paths.dataDir)) {
      // A predecessor that failed before it could stop its instance (its directory deleted
      // under it) leaves a postmaster serving deleted files: it has no lock file left to find.
      killPostmastersOf(paths.dataDir, log);
      await initdb(paths, binaries, owner, log);
    }

    let pid = runningPostmaster(paths.dataDir);
    if (pid !== null) {
      log.info({ pid, dataDir: paths.dataDir }, 'reusing the PostgreSQL already running on this worker directory');
      await waitUntilReady(paths, () => isRunning(pid as number));
    } else {
      pid = await startPostmaster(paths, binaries, owner, log);
    }
    const instance = new OwnPostgres(paths, pid, options);
    instance.watch = setInterval(() => instance.check(), WATCH_INTERVAL_MS);
    instance.watch.unref();
    return instance;
  }

  /** Fast shutdown (a clean checkpoint): the worker is stopping on request. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.watch) clearInterval(this.watch);
    await stopPostmaster(this.paths.dataDir, 'fast');
  }

  private check(): void {
    if (this.stopping || this.lost) return;
    const problem = this.problem();
    if (!problem) return;
    this.lost = true;
    if (this.watch) clearInterval(this.watch);
    // Said now: stopping the orphan breaks the pool's connections, and whichever of their
    // errors comes first may stop the worker before onLost runs.
    this.options.log.error({ reason: problem, pid: this.pid }, 'own PostgreSQL lost');
    void this.stopOrphan()
      .catch((err: Error) => this.options.log.error({ err, pid: this.pid }, 'could not stop the orphaned PostgreSQL'))
      .finally(() => this.options.onLost(problem));
  }

  /**
   * A postmaster whose directory was removed keeps serving from deleted files until its
   * own lock-file check (once a minute): stop it now (immediate shutdown), and wait, as
   * on exit it unlinks its lock files by name — which would be the replacement's.
   */
  private async stopOrphan(): Promise<void> {
    if (!isRunning(this.pid)) return;
    process.kill(this.pid, 'SIGQUIT');
    const deadline = Date.now() + ORPHAN_STOP_MS;
    while (isRunning(this.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // SIGKILL runs no exit handler, so it unlinks nothing.
    if (isRunning(this.pid)) process.kill(this.pid, 'SIGKILL');
  }

  private problem(): string | null {
    if (!isRunning(this.pid)) return `PostgreSQL (pid ${this.pid}) is gone`;
    const named = lockFilePid(this.paths.dataDir);
    if (named === null) return `${this.paths.dataDir}/postmaster.pid is gone (was the data directory removed?)`;
    if (named !== this.pid) return `${this.paths.dataDir}/postmaster.pid names pid ${named}, not ${this.pid}`;
    return null;
  }
}

/**
 * Kills (SIGKILL: no exit handler, so it unlinks no lock file of the new instance) every
 * postmaster started with `-D dataDir`, found by command line in /proc.
 */
function killPostmastersOf(dataDir: string, log: Logger): void {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let args: string[];
    try {
      args = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') continue; // exited meanwhile
      throw err;
    }
    const d = args.indexOf('-D');
    if (d < 0 || args[d + 1] !== dataDir || !/postgres$/.test(args[0])) continue;
    log.warn({ pid: Number(entry), dataDir }, 'stopping an orphaned PostgreSQL whose data directory is gone');
    process.kill(Number(entry), 'SIGKILL');
  }
}

/** The worker directory: the instance's owner's alone (the socket in it is the access control). */
function prepareWorkerDir(paths: WorkerStoragePaths, owner: { uid: number; gid: number } | null): void {
  // The data root and the cluster's directory must stay traversable by the instance's owner.
  fs.mkdirSync(path.dirname(paths.workerDir), { recursive: true, mode: 0o755 });
  fs.mkdirSync(paths.workerDir, { recursive: true, mode: 0o700 });
  if (owner) fs.chownSync(paths.workerDir, owner.uid, owner.gid);
  // Also for a directory that existed: a fresh Docker volume is root's, mode 755.
  fs.chmodSync(paths.workerDir, 0o700);
}

/** spawn options running PostgreSQL's binaries as `owner` (null: as this process), in a fixed environment. Also used by test/support/privatePostgres.ts. */
export function runAs(owner: { uid: number; gid: number } | null): { uid?: number; gid?: number; env: NodeJS.ProcessEnv } {
  // The C locale needs no locale data in the image; UTC matches the shared server's default.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C', TZ: 'UTC' };
  return owner ? { ...owner, env } : { env };
}

/**
 * Creates the data directory: initdb into a sibling, renamed into place once complete,
 * so a worker killed during initdb leaves no half-made directory behind.
 */
export async function initdb(paths: WorkerStoragePaths, binaries: PostgresBinaries, owner: { uid: number; gid: number } | null, log: Logger): Promise<void> {
  const staging = `${paths.dataDir}.init`;
  fs.rmSync(staging, { recursive: true, force: true });
  const started = Date.now();
  const args = ['-D', staging, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-instructions'];
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(binaries.initdb, args, { ...runAs(owner), stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`initdb exited with ${code}:\n${text}`))));
  });
  fs.renameSync(staging, paths.dataDir);
  log.info({ dataDir: paths.dataDir, ms: Date.now() - started, lines: output.split('\n').length }, 'initialised a new PostgreSQL data directory');
}

async function startPostmaster(paths: WorkerStoragePaths, binaries: PostgresBinaries, owner: { uid: number; gid: number } | null, log: Logger): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const child = spawnPostmaster(paths, binaries, owner);
    let exited = false;
    child.once('exit', () => (exited = true));
    try {
      await waitUntilReady(paths, () => !exited);
      log.info({ pid: child.pid, dataDir: paths.dataDir }, 'PostgreSQL started');
      return child.pid as number;
    } catch (err) {
      if (!exited || attempt >= START_ATTEMPTS) throw new Error(`${(err as Error).message}\n${logTail(paths)}`);
      log.warn({ attempt, log: logTail(paths) }, 'PostgreSQL exited while starting; trying again');
      await new Promise((r) => setTimeout(r, START_RETRY_MS));
    }
  }
}

function spawnPostmaster(paths: WorkerStoragePaths, binaries: PostgresBinaries, owner: { uid: number; gid: number } | null): ChildProcess {
  const out = fs.openSync(paths.logFile, 'a');
  try {
    const args = ['-D', paths.dataDir, '-k', paths.socketDir, ...SERVER_SETTINGS.flatMap((s) => ['-c', s])];
    // Its own session: a terminal's Ctrl-C reaches the worker, which stops it in order.
    const child = spawn(binaries.postgres, args, { ...runAs(owner), detached: true, stdio: ['ignore', out, out] });
    // The worker does not wait for it to exit; a replacement worker reuses it after a crash.
    child.unref();
    return child;
  } finally {
    fs.closeSync(out);
  }
}

/** Resolves once the instance accepts connections; throws when `alive` turns false or on timeout. */
async function waitUntilReady(paths: WorkerStoragePaths, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`PostgreSQL exited before accepting connections (${last || 'no connection attempt answered'})`);
    const client = new Client({ connectionString: socketServerUrl(paths.socketDir) });
    // Until it is ready, every error is the expected "not yet" (no socket, starting up,
    // recovering): kept as `last` for the message if it never gets ready.
    client.on('error', (err: Error) => (last = err.message));
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (err) {
      last = (err as Error).message;
    } finally {
      await client.end().catch((err: Error) => (last ||= err.message));
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`PostgreSQL did not accept connections within ${READY_TIMEOUT_MS} ms (${last})`);
}

function logTail(paths: WorkerStoragePaths): string {
  try {
    return fs.readFileSync(paths.logFile, 'utf8').split('\n').slice(-15).join('\n');
  } catch (err) {
    return `(no ${paths.logFile}: ${(err as Error).message})`;
  }
}
