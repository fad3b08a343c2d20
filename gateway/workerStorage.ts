import { Client } from 'pg';
import { clusterNames } from '../schema';
import { removeClusterStorageDir, removeWorkerStorageDir, type Config } from '../platform';
import { removeClusterVolumes, removeWorkerVolume } from './runtimes/dockerVolumes';

/**
 * Removes what a worker stored, once it is stopped for good (scaled down): its database
 * on the shared server, or its own PostgreSQL (stopped, then its directory or, under the
 * docker runtime, its volume removed).
 */
export async function removeWorkerStorage(config: Config, workerId: string): Promise<void> {
  if (config.workerStorage === 'shared') return dropWorkerDatabase(config, workerId);
  if (config.workerRuntime === 'docker') return removeWorkerVolume(config, workerId);
  await removeWorkerStorageDir(config.workerDataRoot, config.cluster, workerId);
}

/**
 * Removes the storage of every worker of the cluster. Dedicated directories under the
 * data root are removed whatever the settings say (a look costs nothing, and a cluster
 * may have run with other settings); volumes need the Docker daemon, so only under the
 * docker runtime; the shared server is touched only with shared storage, as dedicated
 * deployments need not have one. Returns the Docker hosts that did not answer (their
 * volumes remain).
 */
export async function removeClusterStorage(config: Config): Promise<string[]> {
  await removeClusterStorageDir(config.workerDataRoot, config.cluster);
  const unreachable = config.workerRuntime === 'docker' ? await removeClusterVolumes(config) : [];
  if (config.workerStorage === 'shared') await dropClusterDatabases(config);
  return unreachable;
}

/** How long a teardown waits for a CREATE DATABASE of the cluster still running on the server. */
const CREATE_DATABASE_WAIT_MS = 10_000;

async function dropClusterDatabases(config: Config): Promise<void> {
  const prefix = clusterNames(config.cluster).workerDatabasePrefix;
  const pg = new Client({ connectionString: config.databaseUrl });
  await pg.connect();
  try {
    const deadline = Date.now() + CREATE_DATABASE_WAIT_MS;
    for (;;) {
      const { rows } = await pg.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, [prefix]);
      // Names come from pg_database and match the validated cluster prefix.
      for (const { datname } of rows) await pg.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
      // A worker killed in the middle of CREATE DATABASE leaves the server to finish it:
      // after the drops above, so wait for it and drop again (the test suite once left one).
      const { rowCount } = await pg.query(`SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'CREATE DATABASE "' || replace($1, '_', '!_') || '%' ESCAPE '!'`, [
        prefix,
      ]);
      if (!rowCount || Date.now() > deadline) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await pg.end();
  }
}

async function dropWorkerDatabase(config: Config, workerId: string): Promise<void> {
  const database = clusterNames(config.cluster).workerDatabase(workerId);
  const pg = new Client({ connectionString: config.databaseUrl });
  await pg.connect();
  try {
    await pg.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  } finally {
    await pg.end();
  }
}
