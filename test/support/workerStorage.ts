import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { clusterNames } from '../../schema';
import { lockFilePid, socketServerUrl, workerStoragePaths, type Config, type WorkerStoragePaths } from '../../platform';
import { workerVolumeName } from '../../gateway/runtimes/dockerVolumes';

/**
 * Where a dedicated worker's PostgreSQL lives as seen from this host: under the data root
 * (process runtime), or in its volume's mount point (docker runtime; the worker's socket
 * is a file there, so the host reaches it too).
 */
export function workerStorageOnHost(config: Config, workerId: string): WorkerStoragePaths {
  if (config.workerRuntime === 'process') return workerStoragePaths(config.workerDataRoot, config.cluster, workerId);
  const workerDir = execFileSync('docker', ['volume', 'inspect', '-f', '{{ .Mountpoint }}', workerVolumeName(config.cluster, workerId)], { encoding: 'utf8' }).trim();
  return { workerDir, dataDir: path.join(workerDir, 'pgdata'), socketDir: workerDir, logFile: path.join(workerDir, 'postgres.log') };
}

/** A URL of a worker's own database, on the shared server or on its own instance. */
export function workerDatabaseUrl(config: Config, workerId: string): string {
  const database = clusterNames(config.cluster).workerDatabase(workerId);
  if (config.workerStorage === 'dedicated') return socketServerUrl(workerStorageOnHost(config, workerId).socketDir, database);
  const url = new URL(config.databaseUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** The pid of a dedicated worker's postmaster (as this host sees it: the containers share its pid namespace). */
export function postmasterPid(config: Config, workerId: string): number {
  const pid = lockFilePid(workerStorageOnHost(config, workerId).dataDir);
  if (pid === null) throw new Error(`worker ${workerId} has no running PostgreSQL`);
  return pid;
}
