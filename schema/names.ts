/** Every broker, ZooKeeper and database name derived from DBAAS_CLUSTER (docs/contract.md section 2, *Names*). */
export interface ClusterNames {
  readQ: string;
  writeQ: string;
  responseQ(gatewayId: string): string;
  syncExchange: string;
  syncLog: string;
  /** Messages no worker could decode, kept with the reason (header x-reason). */
  deadLetters: string;
  /** Snapshot requests from workers that must bootstrap (the log no longer reaches back). */
  snapshotQ: string;
  zkRoot: string;
  zkWorkers: string;
  zkElection: string;
  zkEpoch: string;
  /** One ephemeral znode per running gateway (gateway/presence.ts). */
  zkGateways: string;
  /** The gateways' election of the one that orchestrates, and its epoch (one per election). */
  zkOrchestrators: string;
  zkOrchestratorEpoch: string;
  /** The slave target and who sets it (gateway/scalingTarget.ts), shared by every gateway. */
  zkScaling: string;
  /** Written by the orchestrator to read ZooKeeper's clock: its worker watchdog (gateway/workerWatchdog.ts). */
  zkClock: string;
  /** Names of AMQP connections as RabbitMQ shows them (client property connection_name): whose each one is, after the cluster's prefix. */
  connectionPrefix: string;
  workerConnection(workerId: string): string;
  gatewayConnection(gatewayId: string, purpose: 'rpc' | 'log'): string;
  workerDatabase(workerId: string): string;
  /** Prefix shared by every worker database of the cluster (for teardown). */
  workerDatabasePrefix: string;
}

export const WORKER_ID_PATTERN = /^[a-z0-9_]{1,40}$/;

export function clusterNames(cluster: string): ClusterNames {
  const connectionPrefix = `ridedb ${cluster} `;
  return {
    readQ: `${cluster}.readQ`,
    writeQ: `${cluster}.writeQ`,
    responseQ: (gatewayId) => `${cluster}.responseQ.${gatewayId}`,
    syncExchange: `${cluster}.syncQ`,
    syncLog: `${cluster}.syncQ.log`,
    deadLetters: `${cluster}.deadLetters`,
    snapshotQ: `${cluster}.snapshotQ`,
    zkRoot: `/${cluster}`,
    zkWorkers: `/${cluster}/workers`,
    zkElection: `/${cluster}/election`,
    zkEpoch: `/${cluster}/epoch`,
    zkGateways: `/${cluster}/gateways`,
    zkOrchestrators: `/${cluster}/orchestrators`,
    zkOrchestratorEpoch: `/${cluster}/orchestratorEpoch`,
    zkScaling: `/${cluster}/scaling`,
    zkClock: `/${cluster}/clock`,
    connectionPrefix,
    workerConnection: (workerId) => `${connectionPrefix}worker ${workerId}`,
    gatewayConnection: (gatewayId, purpose) => `${connectionPrefix}gateway ${gatewayId} ${purpose}`,
    workerDatabase: (workerId) => {
      if (!WORKER_ID_PATTERN.test(workerId)) throw new Error(`invalid worker id: ${workerId}`);
      return `${cluster}_w_${workerId}`;
    },
    workerDatabasePrefix: `${cluster}_w_`,
  };
}
