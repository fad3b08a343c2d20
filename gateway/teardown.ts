import { Client } from 'pg';
import { clusterNames, connectBroker, loadConfig, Zk, type Config } from '../schema';

/**
 * Removes every trace of one cluster namespace: its queues and exchange, its znodes and
 * its workers' databases. Stop the cluster's gateway first.
 */
export async function destroyCluster(config: Config): Promise<void> {
  const names = clusterNames(config.cluster);

  const connection = await connectBroker(config.amqpUrl);
  try {
    const channel = await connection.createChannel();
    for (const queue of [names.readQ, names.writeQ, names.syncLog, names.deadLetters, names.snapshotQ]) await channel.deleteQueue(queue);
    await channel.deleteExchange(names.syncExchange);
    await channel.close();
  } finally {
    await connection.close();
  }

  const zk = await Zk.connect(config.zkHosts, config.zkSessionTimeoutMs);
  try {
    await zk.removeRecursive(names.zkRoot);
  } finally {
    zk.close();
  }

  const pg = new Client({ connectionString: config.databaseUrl });
  await pg.connect();
  try {
    const { rows } = await pg.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`,
      [names.workerDatabasePrefix],
    );
    // Names come from pg_database and match the validated cluster prefix.
    for (const { datname } of rows) await pg.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  } finally {
    await pg.end();
  }
}

/** Drops one worker's database, once it is stopped for good (scaled down). */
export async function dropWorkerDatabase(config: Config, workerId: string): Promise<void> {
  const database = clusterNames(config.cluster).workerDatabase(workerId);
  const pg = new Client({ connectionString: config.databaseUrl });
  await pg.connect();
  try {
    await pg.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  } finally {
    await pg.end();
  }
}

if (require.main === module) {
  const config = loadConfig();
  destroyCluster(config)
    .then(() => process.stdout.write(`cluster ${config.cluster} removed (queues, znodes, databases)\n`))
    .catch((err: Error) => {
      process.stderr.write(`teardown failed: ${err.message}\n`);
      process.exit(1);
    });
}
