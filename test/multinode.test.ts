import fs from 'node:fs';
import { domainChecksums, PASSWORD, sleep, TestCluster, waitUntil, type WorkerInfo } from './support/cluster';
import { longestPause, MultinodeEnvironment } from './support/multinode';

/**
 * `npm run test:multinode`: a cluster over a three-node RabbitMQ cluster, a three-server
 * ZooKeeper ensemble and two Docker hosts (test/support/multinode.ts), under four writers
 * and two readers, loses one RabbitMQ node (WriteQ's leader), then the ensemble's leader,
 * then the master's Docker daemon alone (its containers run on) and brings it back, then
 * the master's whole Docker host, one after another, and brings that host back.
 * Every acknowledged write must be readable exactly once afterwards, the replicas
 * identical, reads and writes must resume after each fault; the longest pause after each
 * is printed (BENCHMARKS.md).
 */
const IMAGE = process.env.WORKER_IMAGE ?? 'ridedb-worker:latest';
const CREATE = 'mutation($ts: DateTimeISO!) { createRide(createdBy: "multi", timestamp: $ts, source: 11, destination: 12) { id timestamp } }';
const READ = 'query($id: Int!) { ride(id: $id) { id timestamp } }';
/** After a fault, ops must have resumed within this long, and run this long before the next. */
const RESUME_TIMEOUT_MS = 60_000;
const STEADY_MS = 2000;

/** Master and both slaves registered and serving (not STARTING). */
const isWhole = (workers: WorkerInfo[]) => workers.length === 3 && workers.every((w) => w.role !== 'STARTING') && workers.filter((w) => w.role === 'MASTER').length === 1;
const threeServing = async (cluster: TestCluster) => isWhole(await cluster.workers());

const tail = (text: string, lines: number) => text.trimEnd().split('\n').slice(-lines).join('\n');
const log = (line: string) => process.stdout.write(`[multinode] ${new Date().toISOString().slice(11, 23)} ${line}\n`);

describe('ridedb on several machines (one machine standing in for them)', () => {
  let env: MultinodeEnvironment;
  let cluster: TestCluster;

  beforeAll(async () => {
    env = await MultinodeEnvironment.start(IMAGE, log);
    cluster = await TestCluster.start({
      ...env.env,
      LOG_LEVEL: 'warn',
      // Two slaves: with the master, three workers over two hosts.
      MIN_SLAVES: '2',
      // Short here so the run is short; the default (10 s) rides out a daemon restart.
      DOCKER_HOST_TIMEOUT_MS: '3000',
    }).catch(async (err: Error) => {
      await env.remove();
      throw err;
    });
    await waitUntil('three workers serving', () => threeServing(cluster), 120_000);
  }, 600_000);

  afterAll(async () => {
    try {
      await cluster?.stop();
    } finally {
      await env?.remove();
    }
  }, 300_000);

  it('spreads the workers over both Docker hosts, the master with a slave elsewhere, and shows each host', async () => {
    const workers = await cluster.workers();
    expect(new Set(workers.map((w) => w.host))).toEqual(new Set(['host-a', 'host-b']));
    const master = workers.find((w) => w.role === 'MASTER') as WorkerInfo;
    expect(workers.some((w) => w.role === 'SLAVE' && w.host !== master.host)).toBe(true);
  });

  it('loses and duplicates no write through a RabbitMQ node, the ZooKeeper leader and a Docker host, one after another', async () => {
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'multi', p: PASSWORD });
    const acknowledged = new Map<number, string>();
    const writeTimes: number[] = [];
    const readTimes: number[] = [];
    const violations: string[] = [];
    const lastFailure = { write: '', read: '' };
    let stop = false;
    let n = 0;
    const writer = async () => {
      while (!stop) {
        // Each attempt its own timestamp: a write applied twice would repeat one.
        const ts = new Date(Date.UTC(2037, 0, 1) + n++ * 1000).toISOString();
        const res = await cluster.gql<{ createRide: { id: number; timestamp: string } }>(CREATE, { ts }).catch((err: Error) => {
          lastFailure.write = err.message;
          return null;
        });
        if (res?.errors?.length) lastFailure.write = JSON.stringify(res.errors[0]);
        if (!res?.data?.createRide) {
          await sleep(50);
          continue;
        }
        acknowledged.set(res.data.createRide.id, ts);
        writeTimes.push(Date.now());
      }
    };
    const reader = async () => {
      while (!stop) {
        const ids = [...acknowledged.keys()];
        if (!ids.length) {
          await sleep(20);
          continue;
        }
        const id = ids[Math.floor(Math.random() * ids.length)];
        const res = await cluster.gql<{ ride: { id: number; timestamp: string } | null }>(READ, { id }).catch((err: Error) => {
          lastFailure.read = err.message;
          return null;
        });
        if (res?.errors?.length) lastFailure.read = JSON.stringify(res.errors[0]);
        if (!res?.data || res.errors?.length) {
          await sleep(50);
          continue;
        }
        if (res.data.ride?.timestamp !== acknowledged.get(id)) violations.push(`ride ${id} read as ${JSON.stringify(res.data.ride)}`);
        readTimes.push(Date.now());
      }
    };
    const load = Promise.all([writer(), writer(), writer(), writer(), reader(), reader()]);

    const pauses: Array<{ fault: string; detail: string; writeMs: number; readMs: number }> = [];
    const resumedAfter = async (began: number) => {
      await waitUntil('writes and reads to resume', async () => writeTimes.some((t) => t > began + 500) && readTimes.some((t) => t > began + 500), RESUME_TIMEOUT_MS).catch(
        async (err: Error) => {
          // What a CI log needs to tell which side stalled and why.
          const since = (times: number[]) => (times.length ? `${Date.now() - Math.max(...times)} ms ago` : 'never');
          log(`stalled: last write ${since(writeTimes)} (${lastFailure.write}), last read ${since(readTimes)} (${lastFailure.read})`);
          log(`workers: ${JSON.stringify(await cluster.workers().catch((e: Error) => e.message))}`);
          log(`gateway log (${cluster.logFile}), last lines:\n${tail(fs.readFileSync(cluster.logFile, 'utf8'), 40)}`);
          log(`RabbitMQ:\n${await env.rabbitmq.queueReport().catch((e: Error) => e.message)}`);
          for (const host of env.dockerHosts)
            log(`containers on ${host.name}:\n${await host.recentLogs(`ridedb.cluster=${cluster.config.cluster}`, 30).catch((e: Error) => e.message)}`);
          throw err;
        },
      );
      await sleep(STEADY_MS);
    };
    const record = (fault: string, detail: string, began: number) => {
      const entry = { fault, detail, writeMs: longestPause(writeTimes, began, Date.now()), readMs: longestPause(readTimes, began, Date.now()) };
      pauses.push(entry);
      log(`${fault} (${detail}): longest write pause ${entry.writeMs} ms, read pause ${entry.readMs} ms`);
    };

    try {
      await sleep(STEADY_MS);

      // 1. The RabbitMQ node leading WriteQ crashes: the queue elects another leader among
      // the nodes left, and every client whose connection was there reconnects.
      const node = await waitUntil("WriteQ's leader", () => env.rabbitmq.leaderOf(cluster.names.writeQ));
      const master = await cluster.master();
      const mastersNode = await env.rabbitmq.nodeOfConnection(cluster.names.workerConnection(master.id));
      let began = Date.now();
      await node.kill();
      await resumedAfter(began);
      record('RabbitMQ node', `${node.node}, WriteQ's leader${mastersNode === node ? ", the master's" : ''}`, began);
      // The workers that were connected to it stopped themselves and were restarted.
      await waitUntil('three workers serving again', () => threeServing(cluster), 120_000);

      // 2. The ZooKeeper ensemble's leader stops: the ensemble elects another; no worker restarts.
      const before = await cluster.workers();
      const leader = await waitUntil('a ZooKeeper leader', () => env.zookeeperLeader());
      began = Date.now();
      await leader.stop();
      await waitUntil('a new ZooKeeper leader', () => env.zookeeperLeader(), RESUME_TIMEOUT_MS);
      await resumedAfter(began);
      record('ZooKeeper leader', `server on ${leader.hosts}`, began);
      const after = await cluster.workers();
      expect(after.map((w) => `${w.id}/${w.pid}/${w.role}`).sort()).toEqual(before.map((w) => `${w.id}/${w.pid}/${w.role}`).sort());

      // 3. The master's Docker daemon alone stops answering; its containers run on. The
      // host counts as lost and its workers are replaced on the other, but the master is
      // alive and holds its ZooKeeper session (and lease): it must stay master, not have
      // its candidacy cleared under it while it may still acknowledge writes. When the
      // daemon answers again its container is removed, and only then is it replaced.
      const held = await cluster.master();
      const cutOff = env.dockerHosts.find((h) => h.name === held.host);
      if (!cutOff) throw new Error(`the master runs on ${held.host}, not on a host of this run`);
      const beforeCut = new Set((await cluster.workers()).map((w) => w.id));
      const onCutOff = (await cluster.workers()).filter((w) => w.host === cutOff.name).length;
      began = Date.now();
      cutOff.freezeDaemon();
      try {
        await waitUntil(
          "replacements for the cut-off host's workers serving on the other",
          async () => (await cluster.workers()).filter((w) => !beforeCut.has(w.id) && w.role === 'SLAVE' && w.host !== cutOff.name).length === onCutOff,
          180_000,
        );
        await resumedAfter(began);
        record('Docker daemon', `${cutOff.name}'s, the master's, cut off`, began);
        const master = await cluster.master();
        expect(`${master.id}/${master.pid}`).toBe(`${held.id}/${held.pid}`);
      } finally {
        cutOff.thawDaemon();
      }
      began = Date.now();
      await waitUntil(
        'the cut-off workers removed and a slave back on their host',
        async () => {
          const workers = await cluster.workers();
          const master = workers.find((w) => w.role === 'MASTER');
          return isWhole(workers) && !!master && master.id !== held.id && workers.some((w) => w.role === 'SLAVE' && w.host !== master.host);
        },
        180_000,
      );
      await resumedAfter(began);
      record('Docker daemon back', cutOff.name, began);

      // 4. The master's whole Docker host is lost: daemon, containers, their PostgreSQL.
      const victim = await cluster.master();
      const host = env.dockerHosts.find((h) => h.name === victim.host);
      if (!host) throw new Error(`the master runs on ${victim.host}, not on a host of this run`);
      const lost = (await cluster.workers()).filter((w) => w.host === host.name).map((w) => w.id);
      began = Date.now();
      await host.stopHost();
      await resumedAfter(began);
      record('Docker host', `${host.name}, the master's`, began);
      // Nothing could kill the master or prove it dead: the orchestrator released its
      // candidacy once its lease had surely lapsed, before its session would have ended.
      const released = fs
        .readFileSync(cluster.logFile, 'utf8')
        .split('\n')
        .filter((line) => line.includes('released the membership and candidacy of a worker silent past a lease'));
      expect(released.filter((line) => line.includes(victim.id))).toHaveLength(1);
      const survivors = env.dockerHosts.filter((h) => h !== host).map((h) => h.name);
      await waitUntil(
        'three workers again, on the host left',
        async () => {
          const workers = await cluster.workers();
          return workers.length === 3 && workers.every((w) => w.role !== 'STARTING' && survivors.includes(w.host ?? ''));
        },
        180_000,
      );

      // 5. The lost host comes back: what it still had of the workers lost with it is
      // removed, and a slave moves there so the master again has one on another host.
      began = Date.now();
      await host.restart();
      await waitUntil(
        'a slave back on the returned host, on the other host than the master',
        async () => {
          const workers = await cluster.workers();
          const master = workers.find((w) => w.role === 'MASTER');
          return isWhole(workers) && !!master && workers.some((w) => w.role === 'SLAVE' && w.host === host.name);
        },
        180_000,
      );
      record('Docker host back', host.name, began);
      const label = { label: [`ridedb.cluster=${cluster.config.cluster}`] };
      const containers = await host.docker.listContainers({ all: true, filters: label });
      const { Volumes } = await host.docker.listVolumes({ filters: label });
      const leftovers = [...containers.map((c) => c.Labels['ridedb.worker']), ...(Volumes ?? []).map((v) => v.Labels['ridedb.worker'])];
      expect(leftovers.filter((id) => lost.includes(id))).toEqual([]);
    } finally {
      stop = true;
      await load;
    }

    log('checking: every acknowledged write once, replicas identical');
    const rides = await cluster.allRides(11, 12, false);
    const stored = new Map(rides.map((r) => [r.id, r.timestamp]));
    for (const [id, ts] of acknowledged)
      if (stored.get(id) !== ts) violations.push(`lost: acknowledged ride ${id} (${ts}) is ${stored.has(id) ? `now ${stored.get(id)}` : 'missing'}`);
    const counts = new Map<string, number>();
    for (const r of rides) counts.set(r.timestamp, (counts.get(r.timestamp) ?? 0) + 1);
    for (const [ts, count] of counts) if (count > 1) violations.push(`applied twice: ${count} rides with timestamp ${ts}`);
    await waitUntil(
      'identical replicas',
      async () => {
        const workers = await cluster.workers();
        const sums = await Promise.all(workers.map((w) => domainChecksums(cluster.workerDatabaseUrl(w.id))));
        return sums.every((s) => JSON.stringify(s) === JSON.stringify(sums[0]));
      },
      120_000,
    );

    log(`${acknowledged.size} writes acknowledged, ${readTimes.length} reads`);
    for (const p of pauses) log(`pause after ${p.fault}: writes ${p.writeMs} ms, reads ${p.readMs} ms`);
    if (process.env.MULTINODE_PAUSES_FILE)
      fs.writeFileSync(process.env.MULTINODE_PAUSES_FILE, JSON.stringify({ at: new Date().toISOString(), writes: acknowledged.size, pauses }, null, 2) + '\n');
    expect(violations).toEqual([]);
    expect(pauses.map((p) => p.fault)).toEqual(['RabbitMQ node', 'ZooKeeper leader', 'Docker daemon', 'Docker daemon back', 'Docker host', 'Docker host back']);
    expect(acknowledged.size).toBeGreaterThan(100);
  }, 900_000);
});
