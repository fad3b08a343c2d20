import 'reflect-metadata';
import { Field, GraphQLISODateTime, Int, ObjectType, registerEnumType } from 'type-graphql';
import type {
  AreaRecord,
  ClusterEventRecord,
  ClusterEventTypeName,
  ClusterRecord,
  RideChangeRecord,
  RideRecord,
  ScalingModeName,
  UserRecord,
  WorkerRecord,
  WorkerRoleName,
} from './records';
import { RIDE_CHANGE_TYPES, type RideChangeTypeName } from './live';
import { WORKER_ROLES } from './records';

/**
 * The GraphQL types of docs/contract.md section 3.1. Each class mirrors a record of ./records, which is
 * what crosses the queues; resolvers return the records as they arrive.
 */

export const WorkerRole = Object.fromEntries(WORKER_ROLES.map((r) => [r, r])) as { [R in WorkerRoleName]: R };
registerEnumType(WorkerRole, {
  name: 'WorkerRole',
  description: 'What a worker does in the cluster right now.',
  valuesConfig: {
    MASTER: { description: 'Applies every write and appends it to the durable log. At most one, elected through ZooKeeper.' },
    SLAVE: { description: 'A caught-up replica: tails the log, serves reads, and is a candidate in the next election.' },
    STARTING: { description: "Catching up with the log (or loading a peer's snapshot) before it serves; in neither `Cluster.master` nor `Cluster.slaves`." },
  },
});

export enum ClusterEventType {
  WORKER_JOINED = 'WORKER_JOINED',
  WORKER_LEFT = 'WORKER_LEFT',
  LEADER_ELECTED = 'LEADER_ELECTED',
  SCALED_UP = 'SCALED_UP',
  SCALED_DOWN = 'SCALED_DOWN',
  ORCHESTRATOR_ELECTED = 'ORCHESTRATOR_ELECTED',
}
registerEnumType(ClusterEventType, {
  name: 'ClusterEventType',
  description: 'What a `ClusterEvent` reports.',
  valuesConfig: {
    WORKER_JOINED: { description: 'A worker registered in ZooKeeper: a new one, or a replacement under the id of one that died.' },
    WORKER_LEFT: { description: 'A worker is gone from ZooKeeper: it stopped, was scaled down, crashed, or lost its session.' },
    LEADER_ELECTED: { description: 'A worker won the election and is the master now; `epoch` is the new epoch.' },
    SCALED_UP: { description: 'The slave target rose from `fromSlaves` to `toSlaves` (`reason` says who decided).' },
    SCALED_DOWN: { description: 'The slave target fell from `fromSlaves` to `toSlaves`; the highest-pid slaves are stopped.' },
    ORCHESTRATOR_ELECTED: {
      description: "A gateway (`gatewayId`) won the gateways' election and orchestrates now: it spawns, fences, scales and replaces workers; `epoch` is the orchestrator epoch.",
    },
  },
});

export enum ScalingMode {
  AUTOMATIC = 'AUTOMATIC',
  MANUAL = 'MANUAL',
}
registerEnumType(ScalingMode, {
  name: 'ScalingMode',
  description: 'Who sets the slave target (`Cluster.desiredSlaves`).',
  valuesConfig: {
    AUTOMATIC: { description: 'The autoscaler: every SCALE_INTERVAL_SECONDS it sets the target from the reads of the last interval. The mode a gateway starts in.' },
    MANUAL: {
      description:
        'An operator: the target of the last `scaleSlaves(count: N)` holds, whatever the load, until `scaleSlaves(count: null)`. Kept in ZooKeeper: it holds through gateway restarts and for every gateway of the cluster.',
    },
  },
});

@ObjectType({ description: 'A pickup or drop-off area: a ward of Bengaluru, as in the original RideShare data. Fixed reference data; `areas` lists them all.' })
export class Area implements AreaRecord {
  @Field(() => Int, { description: 'The area number of the original data; the `source` and `destination` arguments take these ids.' }) id!: number;
  @Field({ description: 'The ward\'s name, e.g. "Kempegowda Ward".' }) name!: string;
}

@ObjectType({ description: 'A rideshare account, created by `createUser`. Its password is kept only as a salted scrypt hash and is never returned.' })
export class User implements Omit<UserRecord, 'createdAt'> {
  @Field({ description: 'Unique, case-sensitive name: 1-64 characters of A-Z a-z 0-9 _ . -' }) username!: string;
  @Field(() => GraphQLISODateTime, { description: 'When the account was created (UTC), fixed by the master when it accepted `createUser`.' }) createdAt!: string;
  // ridesCreated and ridesJoined are field resolvers (gateway/graphql).
}

@ObjectType({ description: 'A ride a user offers from one area to another at a given time, which other users join.' })
export class Ride implements RideRecord {
  @Field(() => Int, {
    description:
      'The log position (seq) of the `createRide` write that made the ride: unique, increasing, never reused, the same on every replica. Not a row counter: every write takes a seq, so the first ride of a cluster is rarely 1. Take ids from `createRide` or from queries.',
  })
  id!: number;
  @Field(() => User, { description: 'The user who offered the ride. Deleting that user deletes the ride.' }) createdBy!: User;
  @Field(() => GraphQLISODateTime, { description: 'When the ride leaves (UTC).' }) timestamp!: string;
  @Field(() => Area, { description: 'Where the ride starts.' }) source!: Area;
  @Field(() => Area, { description: 'Where the ride ends; never the same area as `source`.' }) destination!: Area;
  @Field({ description: "The ride's place in ride lists (timestamp, then id): pass it as `after` for the next page." }) cursor!: string;
  // riders (a page) is a field resolver (gateway/graphql).
  riders!: User[];
}

@ObjectType({ description: 'A worker process (or container): one replica of the data in its own PostgreSQL database, as ZooKeeper lists it.' })
export class Worker implements WorkerRecord {
  @Field({ description: "Stable id, e.g. `w1a2b3c4d`. A dead worker's replacement keeps it, and with it its database `<DBAAS_CLUSTER>_w_<id>`, so it resumes where it stopped." })
  id!: string;
  @Field(() => Int, { description: 'Operating-system process id (on the host, also for containers). `crashSlave` and scaling down pick the highest.' }) pid!: number;
  @Field(() => String, { nullable: true, description: 'Docker container id with the docker runtime; null with the process runtime.' }) containerId!: string | null;
  @Field(() => String, { nullable: true, description: 'The machine the worker runs on (the hostname its runtime gave it); null for a worker of an earlier version.' }) host!:
    string | null;
  @Field(() => WorkerRole, { description: 'What the worker does now.' }) role!: WorkerRoleName;
  @Field(() => Int, {
    description: "The last log seq this worker applied, published every 250 ms. A slave's replication lag is the master's `appliedSeq` minus its own.",
  })
  appliedSeq!: number;
  @Field(() => GraphQLISODateTime, { description: 'When this worker process started (UTC); a replacement has its own.' }) startedAt!: string;
}

@ObjectType({ description: 'The cluster as this gateway sees it: its workers, the log position, and how the slave count is set.' })
export class Cluster implements ClusterRecord {
  @Field(() => Worker, { nullable: true, description: 'The worker that applies writes; null while none is elected (briefly, during a failover).' }) master!: Worker | null;
  @Field(() => [Worker], { description: 'The slaves serving reads, by pid ascending. STARTING workers are in `workers` only.' }) slaves!: Worker[];
  @Field(() => Int, { description: 'Election counter: rises by one with every master election, so a rising epoch means failovers.' }) epoch!: number;
  @Field(() => Int, {
    description: "The highest log position known to be committed: this gateway's last acknowledged write, or the master's `appliedSeq` if higher.",
  })
  lastSeq!: number;
  @Field({ description: 'How workers run: `process` (child processes of the gateway) or `docker` (containers).' }) runtime!: string;
  @Field(() => Int, {
    description:
      'The slave target the gateway works toward, within MIN_SLAVES..MAX_SLAVES, set as `scalingMode` says. `slaves` catches up with it as workers start (and replay the log) or stop.',
  })
  desiredSlaves!: number;
  @Field(() => Int, {
    description:
      "Reads counted since the autoscaler's last run (it runs every SCALE_INTERVAL_SECONDS from the first read). In AUTOMATIC mode the next run sets the target to clamp(ceil(reads / READS_PER_SLAVE), MIN_SLAVES, MAX_SLAVES).",
  })
  readsThisInterval!: number;
  @Field(() => ScalingMode, { description: 'Who sets `desiredSlaves`: the autoscaler (AUTOMATIC) or `scaleSlaves` (MANUAL).' }) scalingMode!: ScalingModeName;
  @Field(() => String, {
    nullable: true,
    description:
      'The id of the gateway that orchestrates (spawns, fences, scales and replaces workers); any gateway serves the API and accepts admin operations. Null while none is elected.',
  })
  orchestrator!: string | null;
}

@ObjectType({ description: 'A change in the cluster, as the gateway saw it. Each is also a `cluster event` line in the gateway log.' })
export class ClusterEvent implements ClusterEventRecord {
  @Field(() => ClusterEventType, { description: 'What happened.' }) type!: ClusterEventTypeName;
  @Field(() => GraphQLISODateTime, { description: 'When the gateway saw it (UTC).' }) at!: string;
  @Field(() => String, { nullable: true, description: 'The worker that joined, left or was elected; null for scaling events.' }) workerId?: string | null;
  @Field(() => Int, { nullable: true, description: "That worker's pid; null for scaling events." }) pid?: number | null;
  @Field(() => Int, { nullable: true, description: 'LEADER_ELECTED: the new epoch; joins and leaves: the epoch at the time; null for scaling events.' }) epoch?: number | null;
  @Field(() => Int, { nullable: true, description: 'Scaling events: the slave target before; null otherwise.' }) fromSlaves?: number | null;
  @Field(() => Int, { nullable: true, description: 'Scaling events: the slave target after; null otherwise.' }) toSlaves?: number | null;
  @Field(() => String, {
    nullable: true,
    description: "Scaling events: who decided, `manual scaleSlaves` or the autoscaler's count (e.g. `60 reads in the last 120s (20 per slave)`); null otherwise.",
  })
  reason?: string | null;
  @Field(() => String, { nullable: true, description: 'ORCHESTRATOR_ELECTED: the gateway that orchestrates now; null otherwise.' }) gatewayId?: string | null;
}

export const RideChangeType = Object.fromEntries(RIDE_CHANGE_TYPES.map((t) => [t, t])) as { [T in RideChangeTypeName]: T };
registerEnumType(RideChangeType, {
  name: 'RideChangeType',
  description: 'What a live ride message says.',
  valuesConfig: {
    SNAPSHOT: { description: 'The first message when subscribing without `afterSeq`: the current rides (`rides`) as of `seq`. Every later message is a change after it.' },
    RIDE_CREATED: { description: '`createRide` made the ride (`ride`).' },
    RIDE_JOINED: { description: '`joinRide` added `rider` to the ride (`ride`, as it stands after the join). A repeated join is reported again.' },
    RIDE_LEFT: {
      description:
        '`deleteUser` of `rider` took them off the ride (`rideId`) they had joined: drop them from its riders. `ride` is null (the master does not read every such ride again), so a riders list at its page size may lack one rider until a new snapshot.',
    },
    RIDE_DELETED: {
      description:
        '`deleteRide`, or `deleteUser` of its creator, deleted the ride (`rideId`; `ride` is null). One `deleteUser` gives a subscription one change per ride it takes or leaves, at one `seq`, in `rideId` order.',
    },
  },
});

@ObjectType({
  description:
    'A message of a live ride subscription, read from the durable log: a SNAPSHOT first (unless resuming with `afterSeq`), then every change after it, in `seq` order, each once. Keep the last `seq` and `rideId`: subscribing again with `afterSeq` and `afterRideId` set to them misses nothing and repeats nothing.',
})
export class RideChange implements RideChangeRecord {
  @Field(() => RideChangeType, { description: 'What happened.' }) type!: RideChangeTypeName;
  @Field(() => Int, { description: "The change's log position (its write's `X-DBaaS-Seq`); for a SNAPSHOT, the position it was read at." }) seq!: number;
  @Field(() => GraphQLISODateTime, { description: 'When the gateway read the change from the log (UTC).' }) at!: string;
  @Field(() => Int, { nullable: true, description: 'The ride changed; null for a SNAPSHOT.' }) rideId!: number | null;
  @Field(() => Ride, { nullable: true, description: 'The ride as this change left it; null for RIDE_DELETED, RIDE_LEFT and SNAPSHOT.' }) ride!: RideRecord | null;
  @Field(() => User, { nullable: true, description: 'RIDE_JOINED: the user who joined; RIDE_LEFT: the user who left; null otherwise.' }) rider!: UserRecord | null;
  @Field(() => [Ride], { nullable: true, description: 'SNAPSHOT: the rides as of `seq` (the first page, by timestamp then id); null otherwise.' }) rides!: RideRecord[] | null;
}
