import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { clusterNames, leaseTimings, WORKER_ID_PATTERN } from '../schema';
import { assertTopology, connectBroker, createLogger, loadConfig, Zk } from '../platform';
import { Coordination } from './coordination';
import { openWorkerDatabase, readPosition } from './database';
import { catchUpToLogEnd } from './logEnd';
import { startLogTail } from './logTail';
import { LeaderLease } from './lease';
import { startOffsetTracker } from './offsetTracker';
import { OwnPostgres } from './ownPostgres';
import { fenceLog, startWriteServer } from './master';
import { Replica } from './replica';
import { RequestIdTrimmer } from './requestIdTrimmer';
import { startReadServer } from './slave';
import { bootstrapFromSnapshot, logReachesBack, startSnapshotServer } from './snapshot';
import { StatisticsKeeper } from './statistics';

/** Below the slaves' default 0: the master serves reads only when no slave has room. */
const MASTER_READ_PRIORITY = -1;

/**
 * One worker process: own database, catch up from the durable log, serve reads as a
 * slave, and take over writes if elected. Wiring only; each step lives in its module.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const workerId = process.env.WORKER_ID ?? `w${randomBytes(4).toString('hex')}`;
  if (!WORKER_ID_PATTERN.test(workerId)) throw new Error(`WORKER_ID must match ${WORKER_ID_PATTERN}`);
  const names = clusterNames(config.cluster);
  const log = createLogger(config.logLevel, { cluster: config.cluster, workerId });
  let stopping = false;
  const failStop = (reason: string): never => {
    // While stopping on request, closing channels makes consumers report errors: not a failure.
    if (stopping) process.exit(0);
    log.fatal({ reason }, 'fail-stop');
    process.exit(70);
  };

  // Dedicated storage: a PostgreSQL of this worker's own, whose loss stops this worker alone.
  const ownPostgres =
    config.workerStorage === 'dedicated'
      ? await OwnPostgres.start({ dataRoot: config.workerDataRoot, cluster: config.cluster, workerId, log, onLost: (reason) => failStop(`own PostgreSQL lost: ${reason}`) })
      : null;
  const pool = await openWorkerDatabase(ownPostgres?.serverUrl ?? config.databaseUrl, names.workerDatabase(workerId), log);

  const connection = await connectBroker(config.amqpUrl, names.workerConnection(workerId));
  connection.on('error', (err: Error) => log.error({ err }, 'AMQP connection error'));
  connection.on('close', () => failStop('AMQP connection closed'));
  const setup = await connection.createChannel();
  await assertTopology(setup, names, config);
  await setup.close();

  let position = await readPosition(pool);
  // WORKER_BOOTSTRAP=snapshot rebuilds this replica from a peer even when the log reaches
  // back (an operator's choice, and how bench:scale times snapshots).
  const forceSnapshot = process.env.WORKER_BOOTSTRAP === 'snapshot';
  if (forceSnapshot) log.warn('WORKER_BOOTSTRAP=snapshot: bootstrapping from a snapshot');
  else if (process.env.WORKER_BOOTSTRAP !== undefined && process.env.WORKER_BOOTSTRAP !== 'auto')
    throw new Error(`WORKER_BOOTSTRAP must be auto or snapshot, not ${process.env.WORKER_BOOTSTRAP}`);
  if (forceSnapshot || !(await logReachesBack(connection, names.syncLog, position.streamOffset, position.appliedSeq))) {
    if (!forceSnapshot) log.warn({ appliedSeq: position.appliedSeq }, 'the log no longer reaches back to this worker; bootstrapping from a snapshot');
    await bootstrapFromSnapshot(connection, names, pool, log);
    position = await readPosition(pool);
  }
  const statistics = new StatisticsKeeper(pool, log);
  const replica = new Replica(pool, position, log, statistics);
  // Idle connections fail when PostgreSQL goes away; it may come back without its last
  // asynchronous commits.
  pool.on('error', () => replica.suspectPosition());

  const zk = await Zk.connect(config.zkHosts, config.zkSessionTimeoutMs);
  const coordination = new Coordination(
    zk,
    names,
    {
      id: workerId,
      pid: Number(process.env.WORKER_PID ?? process.pid),
      containerId: process.env.WORKER_CONTAINER_ID ?? null,
      host: process.env.WORKER_HOST ?? os.hostname(),
      role: 'STARTING',
      appliedSeq: replica.appliedSeq,
      epoch: replica.epoch,
      startedAt: new Date().toISOString(),
      leaseMs: null,
    },
    () => ({ appliedSeq: replica.appliedSeq, epoch: replica.epoch }),
    log,
    failStop,
  );
  await coordination.register();

  const tail = await startLogTail(connection, names.syncLog, replica, log, (err) => failStop(`log apply failed: ${err.message}`));
  // Reads join once this replica holds what the cluster had when it started: the master's
  // advertised position, or with no master the end of the log itself.
  const target = await coordination.masterAppliedSeq();
  if (target === null) await catchUpToLogEnd(connection, names.syncExchange, replica, workerId, log);
  else {
    log.info({ from: replica.appliedSeq, target }, 'catching up');
    while (!(await replica.waitFor(target, 1000))) log.info({ appliedSeq: replica.appliedSeq, target }, 'catching up');
  }

  new RequestIdTrimmer(pool, config.idempotencyWindowSeconds, log).start();
  await startSnapshotServer(connection, names, pool, workerId, config.idempotencyWindowSeconds, log);
  const reads = await startReadServer({ connection, names, pool, replica, workerId, maxAnswerBytes: config.maxAnswerBytes, log: log.child({ role: 'SLAVE' }), failStop });
  await coordination.setRole('SLAVE');
  log.info({ appliedSeq: replica.appliedSeq }, 'serving reads');

  await coordination.runForLeader(async () => {
    const timings = leaseTimings(Math.min(config.zkSessionTimeoutMs, zk.sessionTimeoutMs));
    coordination.holdLease(timings.leaseMs);
    const lease = new LeaderLease({ prove: () => coordination.proveLeadership() }, { ...timings, onLost: (reason) => failStop(reason) });
    // Side by side: each is a round trip or two on a new master's way to writes, and the
    // fence needs them all (bench:failover). The lease counts from its own proof.
    const [epoch, sync] = await Promise.all([coordination.advanceEpoch(), connection.createConfirmChannel(), lease.start()]);
    log.info({ epoch }, 'elected; fencing the log');
    const deps = { connection, lease, names, pool, replica, workerId, maxRidersPerRide: config.maxRidersPerRide, log: log.child({ role: 'MASTER', epoch }), failStop };
    await fenceLog(deps, epoch, sync);
    await Promise.all([tail.stop(), reads.stop()]);
    const offsets = startOffsetTracker(connection, names.syncLog, replica.streamOffset, log);
    await startWriteServer({ ...deps, offsets }, epoch, sync);
    // Reads never go unanswered while a master is up: it consumes ReadQ too, at a lower
    // priority than every slave, so RabbitMQ gives it reads only when no slave can take
    // them (none serves, or all are full). Read-your-writes holds trivially there.
    await startReadServer({
      connection,
      names,
      pool,
      replica,
      workerId,
      maxAnswerBytes: config.maxAnswerBytes,
      log: log.child({ role: 'MASTER', epoch }),
      failStop,
      priority: MASTER_READ_PRIORITY,
    });
    await coordination.setRole('MASTER');
  });

  const shutdown = async (signal: string) => {
    stopping = true;
    log.info({ signal }, 'stopping');
    connection.removeAllListeners('close');
    await coordination.close();
    await connection.close().catch((err: Error) => log.warn({ err }, 'AMQP close failed'));
    await pool.end();
    await ownPostgres?.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`worker failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
