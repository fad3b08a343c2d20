import './productionDefaults';
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { clusterNames } from '../schema';
import { createLogger, loadConfig, ownProcessIdentity, Zk, ZkState } from '../platform';
import { Autoscaler } from './autoscaler';
import { ClusterView } from './clusterView';
import { Metrics } from './metrics';
import { Orchestrator } from './orchestrator';
import { runForOrchestrator } from './orchestratorElection';
import { announceGateway, liveGateways } from './presence';
import { ScalingTarget } from './scalingTarget';
import { MutationRateLimit } from './rateLimit';
import { RpcClient } from './rpcClient';
import { createRuntime } from './runtimes';
import { LiveFeed } from './live/liveFeed';
import { LogFollower } from './live/logFollower';
import { liveFeedReader } from './live/rideChanges';
import { ReadCache } from './readCache/readCache';
import { startServer } from './server';
import { keepSession } from './zkSession';
import { RideService } from './service';

/** The gateway process: wiring only. */
async function main(): Promise<void> {
  const config = loadConfig();
  const gatewayId = `g${randomBytes(4).toString('hex')}`;
  const names = clusterNames(config.cluster);
  const log = createLogger(config.logLevel, { cluster: config.cluster, gatewayId, component: 'gateway' });

  const rpc = await RpcClient.connect(config.amqpUrl, names, gatewayId, config, log);
  const zk = await Zk.connect(config.zkHosts, config.zkSessionTimeoutMs);
  const view = new ClusterView(zk, names, log);
  const target = new ScalingTarget(zk, names, Math.min(Math.max(1, config.minSlaves), Math.max(config.maxSlaves, 1)), log);
  const orchestrator = new Orchestrator(await createRuntime(config, log), view, zk, names, config, target, log);
  orchestrator.on('event', (event) => log.info(event, 'cluster event'));
  await view.start();
  await target.start();
  // Before any worker starts, so cluster:destroy refuses from the first moment.
  const presence = { id: gatewayId, pid: process.pid, host: os.hostname(), port: config.port, startedAt: new Date().toISOString(), identity: ownProcessIdentity() };
  await announceGateway(zk, names, presence);
  const autoscaler = new Autoscaler(orchestrator, config, log);
  const metrics = new Metrics(orchestrator);
  rpc.onBatch = (kind, size) => metrics.rpcBatchSize.observe({ kind }, size);
  // Compiled reads' answers, kept exact by the log (READ_CACHE_BYTES=0: none).
  const readCache =
    config.readCacheBytes > 0
      ? new ReadCache(
          { maxBytes: config.readCacheBytes },
          {
            hit: () => metrics.readCache.inc({ outcome: 'hit' }),
            miss: (reason) => metrics.readCache.inc({ outcome: reason }),
            invalidated: (n) => metrics.readCacheInvalidations.inc(n),
          },
        )
      : undefined;
  if (readCache) metrics.readCacheSize = () => readCache.size;
  const service = new RideService(
    rpc,
    {
      noteRead: () => autoscaler.noteRead(),
      noteRpc: (kind, op, seconds, errorCode) => {
        metrics.rpcSeconds.observe({ kind, op }, seconds);
        if (errorCode === 'UNAVAILABLE') metrics.rpcTimeouts.inc({ kind });
      },
    },
    new MutationRateLimit(config.mutationsPerMinutePerIp),
    {
      headSeq: () => view.headSeq(),
      startSeq: () => view.startSeq,
      lookahead: config.minSeqLookahead,
      maxWaiting: config.maxPositionWaits,
    },
    { defaultSize: config.pageSizeDefault, maxSize: config.pageSizeMax },
    readCache,
  );
  // Live subscriptions: the log as the workers read it, from a window back.
  const live = new LiveFeed({ historySize: config.liveHistoryChanges, historyBytes: config.liveHistoryBytes, bufferSize: config.liveBufferChanges });
  metrics.liveHeadSeq = () => live.headSeq;
  const follower = new LogFollower([liveFeedReader(live), ...(readCache ? [readCache] : [])], {
    amqpUrl: config.amqpUrl,
    connectionName: names.gatewayConnection(gatewayId, 'log'),
    streamQueue: names.syncLog,
    replayWindowMs: config.liveReplayWindowSeconds * 1000,
    log,
  });
  await follower.start();
  const server = await startServer({
    config,
    service,
    orchestrator,
    autoscaler,
    metrics,
    live,
    log,
    dependencies: { rabbitmq: () => rpc.connectedToBroker, zookeeper: () => zk.connected },
  });
  // Serving from here on; orchestrating only once elected (at once, for the first gateway).
  const candidacy = (generation: number) =>
    runForOrchestrator(zk, names, gatewayId, log, {
      onElected: () => orchestrator.start(),
      onLost: (reason) => {
        // Its session expired: keepSession has stepped down and runs a new candidacy.
        if (generation !== session.generation() || zk.client.getState() === ZkState.EXPIRED) return;
        // Another gateway may orchestrate by now: acting on would make two of them.
        log.fatal({ reason }, 'lost the orchestrator candidacy; exiting so that a supervisor restarts this gateway');
        process.exit(70);
      },
    });
  // An expired session (a pause or partition past ZK_SESSION_TIMEOUT_MS) takes the
  // presence, candidacy and watches with it: stop orchestrating at once, then register
  // again on a new session.
  let lastCandidacy: { stopWatching(): void } | undefined;
  const session = keepSession(
    zk,
    {
      expired: () => {
        orchestrator.stepDown();
        lastCandidacy?.stopWatching();
      },
      renewed: async () => {
        await view.start();
        await target.start();
        await announceGateway(zk, names, presence);
        lastCandidacy = await candidacy(session.generation());
      },
    },
    log,
  );
  lastCandidacy = await candidacy(session.generation());

  log.info({ port: server.port, runtime: config.workerRuntime }, `ridedb gateway listening on http://localhost:${server.port}/graphql`);
  // On a line of its own, plain text: the address a person opens, easy to spot between JSON log lines.
  process.stdout.write(`ridedb explorer: http://localhost:${server.port}/\n`);
  if (config.adminTokenGenerated) {
    // Printed once, on purpose: this is the only place an operator can learn it.
    process.stdout.write(`\nDBAAS_ADMIN_TOKEN=${config.adminToken}\n(admin token generated for this run; set DBAAS_ADMIN_TOKEN to choose your own)\n\n`);
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    autoscaler.stop();
    // The last gateway of the cluster takes its workers down with it; otherwise they keep
    // serving, and the next orchestrator adopts them.
    // Bounded: with ZooKeeper unreachable the request would wait for its return.
    const gateways = await Promise.race([
      liveGateways(zk, names),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('ZooKeeper did not answer within 3 s')), 3000).unref()),
    ]).catch((err: Error) => {
      log.warn({ err }, 'could not list the other gateways; stopping the workers too');
      return [];
    });
    const others = gateways.filter((g) => g.id !== gatewayId);
    log.info({ signal, otherGateways: others.length }, others.length ? 'stopping this gateway; its workers keep serving the others' : 'stopping gateway and its workers');
    await orchestrator.stop(others.length === 0);
    // Leave ZooKeeper before draining HTTP (up to Apollo's 10 s grace): this gateway's
    // candidacy and presence go at once, so another gateway orchestrates without waiting.
    view.close();
    zk.close();
    await server.close();
    await follower.stop();
    await rpc.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`gateway failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
