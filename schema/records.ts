import type { RideChangeTypeName } from './live';

/** The shapes that reads and writes return, as JSON crosses the queues. Times are ISO-8601 UTC. */
export interface AreaRecord {
  id: number;
  name: string;
}

export interface UserRecord {
  username: string;
  createdAt: string;
}

export interface RideRecord {
  id: number;
  /** Its place in ride lists: `after` for the next page (values.ts rideCursor). */
  cursor: string;
  createdBy: UserRecord;
  timestamp: string;
  source: AreaRecord;
  destination: AreaRecord;
  riders: UserRecord[];
}

export interface UserRidesRecord {
  created: RideRecord[];
  joined: RideRecord[];
}

/** A live subscription's message (schema/live.ts): a snapshot, or one change read from the log. */
export interface RideChangeRecord {
  type: RideChangeTypeName;
  /** The log position: of the change, or the one the snapshot was read at. */
  seq: number;
  at: string;
  rideId: number | null;
  /** The ride as the change left it; null when deleted or left, and for snapshots. */
  ride: RideRecord | null;
  /** RIDE_JOINED: who joined; RIDE_LEFT: who left. */
  rider: UserRecord | null;
  /** SNAPSHOT: the rides as of `seq`. */
  rides: RideRecord[] | null;
}

/** What a worker does in the cluster: the one list (ZooKeeper records, GraphQL's enum and the metrics derive from it). */
export const WORKER_ROLES = ['MASTER', 'SLAVE', 'STARTING'] as const;
export type WorkerRoleName = (typeof WORKER_ROLES)[number];

export interface WorkerRecord {
  id: string;
  pid: number;
  containerId: string | null;
  /** The machine the worker runs on, as its runtime named it. */
  host: string | null;
  role: WorkerRoleName;
  appliedSeq: number;
  startedAt: string;
}

export interface ClusterRecord {
  master: WorkerRecord | null;
  slaves: WorkerRecord[];
  epoch: number;
  lastSeq: number;
  runtime: string;
  desiredSlaves: number;
  readsThisInterval: number;
  scalingMode: ScalingModeName;
  /** The gateway that orchestrates (spawns, fences, scales), if one is elected. */
  orchestrator: string | null;
}

/** AUTOMATIC: the autoscaler sizes the slaves; MANUAL: an operator's scaleSlaves target holds. */
export type ScalingModeName = 'AUTOMATIC' | 'MANUAL';

export type ClusterEventTypeName = 'WORKER_JOINED' | 'WORKER_LEFT' | 'LEADER_ELECTED' | 'SCALED_UP' | 'SCALED_DOWN' | 'ORCHESTRATOR_ELECTED';

export interface ClusterEventRecord {
  type: ClusterEventTypeName;
  at: string;
  workerId?: string | null;
  pid?: number | null;
  epoch?: number | null;
  fromSlaves?: number | null;
  toSlaves?: number | null;
  reason?: string | null;
  /** ORCHESTRATOR_ELECTED: the gateway that orchestrates now. */
  gatewayId?: string | null;
}
