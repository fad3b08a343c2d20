import fs from 'node:fs';
import path from 'node:path';
import { WORKER_ID_PATTERN } from '../schema/names';

/**
 * Where a dedicated worker's PostgreSQL lives (WORKER_STORAGE=dedicated), and how to find
 * and stop the postmaster running there. The worker starts its instance
 * (worker/ownPostgres.ts); the gateway removes it when the worker is retired or the
 * cluster destroyed (gateway/workerStorage.ts). Both need the same layout, hence here.
 *
 * Layout: `<root>/<cluster>/<workerId>/` (the docker runtime mounts a volume there)
 * holds `pgdata/`, the instance's unix socket and `postgres.log`.
 */
export interface WorkerStoragePaths {
  workerDir: string;
  dataDir: string;
  /** The socket directory: the worker directory itself, so no port is allocated. */
  socketDir: string;
  logFile: string;
}

/** The port only names the socket file (`.s.PGSQL.<port>`); nothing listens on TCP. */
export const DEDICATED_PORT = 5432;
/** sun_path holds 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH = 107;

export function clusterStorageDir(dataRoot: string, cluster: string): string {
  return path.join(dataRoot, cluster);
}

export function workerStoragePaths(dataRoot: string, cluster: string, workerId: string): WorkerStoragePaths {
  // Ids become path components: only the validated alphabet, never `..` or `/`.
  if (!WORKER_ID_PATTERN.test(workerId)) throw new Error(`invalid worker id: ${workerId}`);
  const workerDir = path.join(clusterStorageDir(dataRoot, cluster), workerId);
  return { workerDir, dataDir: path.join(workerDir, 'pgdata'), socketDir: workerDir, logFile: path.join(workerDir, 'postgres.log') };
}

/** Throws when the socket path would not fit a unix socket address. */
export function checkSocketPath(socketDir: string): void {
  const socket = path.join(socketDir, `.s.PGSQL.${DEDICATED_PORT}`);
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    throw new Error(`the socket path ${socket} is longer than ${MAX_SOCKET_PATH} bytes: choose a shorter WORKER_DATA_ROOT`);
  }
}

/** A server URL (database `postgres`) reaching the instance over its unix socket. */
export function socketServerUrl(socketDir: string, database = 'postgres'): string {
  // `localhost` is a placeholder the `host` parameter overrides (pg needs a URL host).
  return `postgres://postgres@localhost/${database}?${new URLSearchParams({ host: socketDir, port: String(DEDICATED_PORT) }).toString()}`;
}

/** Whether `pid` is a live process (a zombie is not: it only waits to be reaped). */
export function isRunning(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised command name (which may itself hold spaces).
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** The pid postmaster.pid names, or null when there is no such file. */
export function lockFilePid(dataDir: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const pid = Number(text.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** Whether process `pid` is a postgres started on `dataDir` (not some process that reused the pid). */
export function isPostmasterOf(pid: number, dataDir: string): boolean {
  let argv: string[];
  try {
    argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
  const at = argv.indexOf('-D');
  return at >= 0 && path.resolve(argv[at + 1] ?? '') === path.resolve(dataDir) && isRunning(pid);
}

/** The pid of the postmaster serving `dataDir`, if one runs. */
export function runningPostmaster(dataDir: string): number | null {
  const pid = lockFilePid(dataDir);
  return pid !== null && isPostmasterOf(pid, dataDir) ? pid : null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stops the postmaster of `dataDir`, if one runs, and waits until it is gone: SIGINT is
 * PostgreSQL's fast shutdown (a checkpoint, then exit), SIGQUIT its immediate one (no
 * checkpoint: for an instance about to be removed). SIGKILL after `timeoutMs`.
 */
export async function stopPostmaster(dataDir: string, mode: 'fast' | 'immediate', timeoutMs = 10_000): Promise<void> {
  const pid = runningPostmaster(dataDir);
  if (pid === null) return;
  signal(pid, mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
  const deadline = Date.now() + timeoutMs;
  while (isRunning(pid) && Date.now() < deadline) await sleep(50);
  if (isRunning(pid)) signal(pid, 'SIGKILL');
  while (isRunning(pid)) await sleep(50);
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (err) {
    // Gone between the check and the signal: what we wanted.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Stops a worker's instance (immediate) and removes its directory: the worker is retired for good. */
export async function removeWorkerStorageDir(dataRoot: string, cluster: string, workerId: string): Promise<void> {
  const { workerDir, dataDir } = workerStoragePaths(dataRoot, cluster, workerId);
  await stopPostmaster(dataDir, 'immediate');
  await fs.promises.rm(workerDir, { recursive: true, force: true });
}

/** Removes every dedicated worker directory of a cluster (stopping their instances), then the cluster's directory. */
export async function removeClusterStorageDir(dataRoot: string, cluster: string): Promise<void> {
  const dir = clusterStorageDir(dataRoot, cluster);
  const entries = await fs.promises.readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  for (const entry of entries) {
    if (entry.isDirectory() && WORKER_ID_PATTERN.test(entry.name)) await removeWorkerStorageDir(dataRoot, cluster, entry.name);
  }
  await fs.promises.rm(dir, { recursive: true, force: true });
}
