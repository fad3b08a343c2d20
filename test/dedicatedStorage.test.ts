import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { clusterStorageDir, isRunning, loadConfig, workerEnvironment } from '../platform';
import { domainChecksums, PASSWORD, sleep, TestCluster, waitUntil, type WorkerInfo } from './support/cluster';
import { writeRidesFor, type AcknowledgedRide } from './support/load';
import { postmasterPid, workerStorageOnHost } from './support/workerStorage';

/**
 * WORKER_STORAGE=dedicated: each worker runs a PostgreSQL of its own, so losing one
 * (killed, or its data directory removed) stops that worker alone; it is replaced and
 * catches up from the log, with no acknowledged write lost or applied twice.
 */

const volumesOf = (cluster: string) =>
  execFileSync('docker', ['volume', 'ls', '-q', '--filter', `label=ridedb.cluster=${cluster}`], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);

/** Every acknowledged ride is stored once, with its timestamp; no attempt was applied twice. */
async function expectExactlyOnce(cluster: TestCluster, acknowledged: AcknowledgedRide[], source: number, destination: number): Promise<void> {
  const rides = await cluster.allRides(source, destination);
  const stored = new Map(rides.map((r) => [r.id, r.timestamp]));
  for (const w of acknowledged) expect(stored.get(w.id)).toBe(w.timestamp);
  expect(new Set(rides.map((r) => r.timestamp)).size).toBe(rides.length);
}

/** Two serving workers again, with identical domain tables (each read from its own instance). */
async function expectConverged(cluster: TestCluster): Promise<WorkerInfo[]> {
  await cluster.waitHealthy();
  const workers = await waitUntil(
    'two serving workers',
    async () => {
      const ws = await cluster.workers();
      return ws.length === 2 && ws.every((w) => w.role !== 'STARTING') ? ws : undefined;
    },
    60_000,
  );
  const sums = await waitUntil('identical replicas', async () => {
    const all = await Promise.all(workers.map((w) => domainChecksums(cluster.workerDatabaseUrl(w.id))));
    return all.every((s) => JSON.stringify(s) === JSON.stringify(all[0])) ? all : undefined;
  });
  expect(sums[0]).toEqual(sums[1]);
  return workers;
}

async function epoch(cluster: TestCluster): Promise<number> {
  return (await cluster.data<{ cluster: { epoch: number } }>('{ cluster { epoch } }')).cluster.epoch;
}

/** Writers for `ms`, with `fault` run `faultAfterMs` in; returns what was acknowledged and when the fault hit. */
async function underLoad(cluster: TestCluster, route: { source: number; destination: number; epochYear: number }, fault: () => void, faultAfterMs = 1500, ms = 6000) {
  let faultAt = 0;
  const [{ acknowledged, failed }] = await Promise.all([
    writeRidesFor(cluster, { createdBy: 'driver', ...route, ms, writers: 4 }),
    (async () => {
      await sleep(faultAfterMs);
      faultAt = Date.now();
      fault();
    })(),
  ]);
  expect(acknowledged.filter((w) => w.at < faultAt).length).toBeGreaterThan(0);
  expect(acknowledged.filter((w) => w.at > faultAt + 1500).length).toBeGreaterThan(0);
  return { acknowledged, failed };
}

/** SIGKILL the master's postmaster under load: the master fail-stops, a slave takes over, the master's replacement catches up. */
async function killMasterPostgres(cluster: TestCluster, route: { source: number; destination: number; epochYear: number }): Promise<void> {
  const oldMaster = await cluster.master();
  const pgPid = postmasterPid(cluster.config, oldMaster.id);
  const before = await epoch(cluster);

  const { acknowledged, failed } = await underLoad(cluster, route, () => process.kill(pgPid, 'SIGKILL'));

  const newMaster = await cluster.master();
  expect(newMaster.id).not.toBe(oldMaster.id);
  expect(await epoch(cluster)).toBeGreaterThan(before);
  await expectExactlyOnce(cluster, acknowledged, route.source, route.destination);

  const workers = await expectConverged(cluster);
  // The old master came back under its id, as a slave, on a new instance.
  const replaced = workers.find((w) => w.id === oldMaster.id);
  expect(replaced?.role).toBe('SLAVE');
  expect(replaced?.pid).not.toBe(oldMaster.pid);
  expect(postmasterPid(cluster.config, oldMaster.id)).not.toBe(pgPid);
  process.stdout.write(`${cluster.config.workerRuntime}: master's PostgreSQL killed: ${acknowledged.length} acknowledged, ${failed} failed\n`);
}

describe('the WORKER_STORAGE and WORKER_DATA_ROOT settings', () => {
  it('default to dedicated under the docker runtime only, and pass to the workers resolved', () => {
    expect(loadConfig({}).workerStorage).toBe('shared');
    expect(loadConfig({ WORKER_RUNTIME: 'docker' }).workerStorage).toBe('dedicated');
    expect(loadConfig({ WORKER_RUNTIME: 'docker', WORKER_STORAGE: 'shared' }).workerStorage).toBe('shared');
    expect(loadConfig({ WORKER_STORAGE: 'dedicated' }).workerStorage).toBe('dedicated');
    // A worker is not told its runtime: the gateway passes the decision itself.
    expect(workerEnvironment(loadConfig({ WORKER_RUNTIME: 'docker', WORKER_DATA_ROOT: '/srv/ridedb' }))).toMatchObject({
      WORKER_STORAGE: 'dedicated',
      WORKER_DATA_ROOT: '/srv/ridedb',
    });
    expect(() => loadConfig({ WORKER_STORAGE: 'local' })).toThrow(/WORKER_STORAGE/);
    expect(() => loadConfig({ WORKER_DATA_ROOT: 'relative/dir' })).toThrow(/WORKER_DATA_ROOT must be an absolute path/);
  });
});

describe('dedicated storage, process runtime', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start({ WORKER_STORAGE: 'dedicated' });
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'driver', p: PASSWORD });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('gives every worker its own PostgreSQL, on a unix socket in its directory', async () => {
    const workers = await cluster.workers();
    const pids = workers.map((w) => postmasterPid(cluster.config, w.id));
    expect(new Set(pids).size).toBe(workers.length);
    for (const pid of pids) expect(isRunning(pid)).toBe(true);
    for (const w of workers) expect(fs.existsSync(`${workerStorageOnHost(cluster.config, w.id).socketDir}/.s.PGSQL.5432`)).toBe(true);
  });

  it("fails over when the master's PostgreSQL is SIGKILLed under writes; the replacement converges", async () => {
    await killMasterPostgres(cluster, { source: 2, destination: 3, epochYear: 2040 });
  });

  it('replaces a slave whose data directory is deleted under writes; it catches up from the log', async () => {
    const slave = (await cluster.workers()).find((w) => w.role === 'SLAVE')!;
    const storage = workerStorageOnHost(cluster.config, slave.id);
    const pgPid = postmasterPid(cluster.config, slave.id);

    const { acknowledged } = await underLoad(cluster, { source: 4, destination: 5, epochYear: 2041 }, () =>
      // The instance keeps writing files while they go: retry until the tree is gone.
      fs.rmSync(storage.workerDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 10 }),
    );
    await expectExactlyOnce(cluster, acknowledged, 4, 5);
    const workers = await expectConverged(cluster);
    expect(workers.find((w) => w.id === slave.id)?.pid).not.toBe(slave.pid);
    // A new data directory, a new instance; the orphaned one is stopped (it may still be
    // shutting down when the replacement has converged).
    expect(postmasterPid(cluster.config, slave.id)).not.toBe(pgPid);
    await waitUntil('the orphaned postmaster gone', async () => !isRunning(pgPid), 15_000);
  });

  it("reuses a killed worker's still-running PostgreSQL for its replacement", async () => {
    const master = await cluster.master();
    const pgPid = postmasterPid(cluster.config, master.id);
    await cluster.admin('mutation { crashMaster { id } }');
    const workers = await waitUntil('the crashed master back as a slave', async () => {
      const ws = await cluster.workers();
      return ws.some((w) => w.id === master.id && w.pid !== master.pid && w.role === 'SLAVE') ? ws : undefined;
    });
    expect(workers).toHaveLength(2);
    expect(postmasterPid(cluster.config, master.id)).toBe(pgPid);
    await expectConverged(cluster);
  });

  it('removes a retired worker’s instance and directory on scale-down, and the cluster’s on stop', async () => {
    await cluster.admin('mutation { scaleSlaves(count: 2) { desiredSlaves } }');
    const three = await waitUntil('three workers', async () => {
      const ws = await cluster.workers();
      return ws.length === 3 && ws.every((w) => w.role !== 'STARTING') ? ws : undefined;
    });
    const pids = new Map(three.map((w) => [w.id, postmasterPid(cluster.config, w.id)]));
    await cluster.admin('mutation { scaleSlaves(count: 1) { desiredSlaves } }');
    const retired = await waitUntil('a retired worker', async () => {
      const ids = new Set((await cluster.workers()).map((w) => w.id));
      return ids.size === 2 ? three.find((w) => !ids.has(w.id)) : undefined;
    });
    const dir = workerStorageOnHost(cluster.config, retired.id).workerDir;
    await waitUntil('its directory removed', async () => !fs.existsSync(dir) && !isRunning(pids.get(retired.id)!), 20_000);

    await cluster.stop();
    expect(fs.existsSync(clusterStorageDir(cluster.config.workerDataRoot, cluster.config.cluster))).toBe(false);
    for (const pid of pids.values()) expect(isRunning(pid)).toBe(false);
  });
});

describe('dedicated storage, docker runtime (its default)', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start({ WORKER_RUNTIME: 'docker' });
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'driver', p: PASSWORD });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('runs PostgreSQL inside each worker container, its data in a volume per worker', async () => {
    expect(cluster.config.workerStorage).toBe('dedicated');
    const workers = await cluster.workers();
    expect(volumesOf(cluster.config.cluster).sort()).toEqual(workers.map((w) => `ridedb_${cluster.config.cluster}_${w.id}`).sort());
  });

  it("fails over when the master's PostgreSQL is SIGKILLed under writes; the replacement container converges on the same volume", async () => {
    await killMasterPostgres(cluster, { source: 6, destination: 7, epochYear: 2042 });
  });

  it("removes a retired worker's volume on scale-down, and every volume of the cluster on stop", async () => {
    await cluster.admin('mutation { scaleSlaves(count: 2) { desiredSlaves } }');
    const three = await waitUntil('three workers', async () => {
      const ws = await cluster.workers();
      return ws.length === 3 && ws.every((w) => w.role !== 'STARTING') ? ws : undefined;
    });
    await cluster.admin('mutation { scaleSlaves(count: 1) { desiredSlaves } }');
    const retired = await waitUntil('a retired worker', async () => {
      const ids = new Set((await cluster.workers()).map((w) => w.id));
      return ids.size === 2 ? three.find((w) => !ids.has(w.id)) : undefined;
    });
    // Removed once Docker has removed the dead container that held it.
    await waitUntil('its volume removed', async () => !volumesOf(cluster.config.cluster).includes(`ridedb_${cluster.config.cluster}_${retired.id}`), 20_000);
    expect(volumesOf(cluster.config.cluster)).toHaveLength(2);

    await cluster.stop();
    expect(volumesOf(cluster.config.cluster)).toEqual([]);
  });
});
