import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { clusterNames } from '../../schema';
import { lockFilePid, socketServerUrl, workerStoragePaths, type Config, type WorkerStoragePaths } from '../../platform';
import { workerVolumeName } from '../../gateway/runtimes/dockerVolumes';
import { certDirectory } from '../../gateway/runtimes/dockerClient';

/**
 * Where a dedicated worker's PostgreSQL lives as seen from this host: under the data root
 * (process runtime), or in its volume's mount point (docker runtime; the worker's socket
 * is a file there, so the host reaches it too).
 */
export function workerStorageOnHost(config: Config, workerId: string): WorkerStoragePaths {
  if (config.workerRuntime === 'process') return workerStoragePaths(config.workerDataRoot, config.cluster, workerId);
  const workerDir = volumeMountpoint(config, workerVolumeName(config.cluster, workerId));
  return { workerDir, dataDir: path.join(workerDir, 'pgdata'), socketDir: workerDir, logFile: path.join(workerDir, 'postgres.log') };
}

/** A volume's mount point on whichever daemon of DOCKER_HOSTS has it (all run on this machine in the tests). */
function volumeMountpoint(config: Config, volume: string): string {
  const failures: string[] = [];
  for (const host of config.dockerHosts) {
    const certs = certDirectory(host, config);
    const tls = certs ? ['--tlsverify', `--tlscacert=${certs}/ca.pem`, `--tlscert=${certs}/cert.pem`, `--tlskey=${certs}/key.pem`] : [];
    const daemon = host.kind === 'unix' ? ['-H', `unix://${host.socketPath}`] : host.kind === 'tcp' ? ['-H', `tcp://${host.host}:${host.port}`, ...tls] : [];
    try {
      return execFileSync('docker', [...daemon, 'volume', 'inspect', '-f', '{{ .Mountpoint }}', volume], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    } catch (err) {
      failures.push(`${host.name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`volume ${volume} is on no Docker host (${failures.join('; ')})`);
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
