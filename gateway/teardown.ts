import { clusterNames } from '../schema';
import { connectBroker, loadConfig, Zk, type Config } from '../platform';
import { liveGateways } from './presence';
import { removeClusterStorage } from './workerStorage';

/** The cluster still has a running gateway (its presence znode is there). */
export class ClusterInUseError extends Error {
  readonly code = 'CLUSTER_IN_USE';
}

/**
 * Removes every trace of one cluster namespace: its queues and exchange, its znodes and
 * its workers' storage (databases on the shared server, or their own PostgreSQL
 * instances: gateway/workerStorage.ts). Refuses while a gateway of the cluster runs,
 * unless `force`: removing a live cluster's log and databases loses its data under its
 * clients.
 */
export async function destroyCluster(config: Config, options: { force?: boolean } = {}): Promise<void> {
  const names = clusterNames(config.cluster);

  const zk = await Zk.connect(config.zkHosts, config.zkSessionTimeoutMs);
  try {
    // Checked before anything is removed, so a refusal leaves the cluster whole.
    const running = await liveGateways(zk, names);
    if (running.length && !options.force) {
      const which = running.map((g) => (g.pid ? `${g.id} (pid ${g.pid} on ${g.host}, port ${g.port})` : g.id)).join(', ');
      throw new ClusterInUseError(
        `cluster ${config.cluster} has a running gateway: ${which}. Stop it first, or pass --force. ` +
          `(A gateway killed without a clean stop shows here until its ZooKeeper session expires, ${config.zkSessionTimeoutMs} ms.)`,
      );
    }

    const connection = await connectBroker(config.amqpUrl, `${names.connectionPrefix}teardown`);
    try {
      const channel = await connection.createChannel();
      for (const queue of [names.readQ, names.writeQ, names.syncLog, names.deadLetters, names.snapshotQ]) await channel.deleteQueue(queue);
      await channel.deleteExchange(names.syncExchange);
      await channel.close();
    } finally {
      await connection.close();
    }

    await zk.removeRecursive(names.zkRoot);
  } finally {
    zk.close();
  }

  const unreachable = await removeClusterStorage(config);
  // A lost host cannot be cleared; the rest of the cluster is gone, so this is no failure.
  if (unreachable.length) process.stderr.write(`teardown: Docker hosts not answering kept their volumes of ${config.cluster}: ${unreachable.join('; ')}\n`);
}

if (require.main === module) {
  const config = loadConfig();
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--force');
  if (unknown.length) {
    process.stderr.write(`usage: cluster:destroy [--force]  (unknown: ${unknown.join(' ')})\n`);
    process.exit(2);
  }
  destroyCluster(config, { force: args.includes('--force') })
    .then(() => process.stdout.write(`cluster ${config.cluster} removed (queues, znodes, worker storage)\n`))
    .catch((err: Error) => {
      process.stderr.write(`teardown failed: ${err.message}\n`);
      process.exit(1);
    });
}
