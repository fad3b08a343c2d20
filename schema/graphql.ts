import 'reflect-metadata';
import { Field, GraphQLISODateTime, Int, ObjectType, registerEnumType } from 'type-graphql';
import type {
  AreaRecord,
  ClusterEventRecord,
  ClusterEventTypeName,
  ClusterRecord,
  RideRecord,
  UserRecord,
  WorkerRecord,
  WorkerRoleName,
} from './records';

/**
 * The GraphQL types of DESIGN 3.1. Each class mirrors a record of ./records, which is
 * what crosses the queues; resolvers return the records as they arrive.
 */

export enum WorkerRole {
  MASTER = 'MASTER',
  SLAVE = 'SLAVE',
  STARTING = 'STARTING',
}
registerEnumType(WorkerRole, { name: 'WorkerRole' });

export enum ClusterEventType {
  WORKER_JOINED = 'WORKER_JOINED',
  WORKER_LEFT = 'WORKER_LEFT',
  LEADER_ELECTED = 'LEADER_ELECTED',
  SCALED_UP = 'SCALED_UP',
  SCALED_DOWN = 'SCALED_DOWN',
}
registerEnumType(ClusterEventType, { name: 'ClusterEventType' });

@ObjectType()
export class Area implements AreaRecord {
  @Field(() => Int) id!: number;
  @Field() name!: string;
}

@ObjectType()
export class User implements Omit<UserRecord, 'createdAt'> {
  @Field() username!: string;
  @Field(() => GraphQLISODateTime) createdAt!: string;
  // ridesCreated and ridesJoined are field resolvers (gateway/graphql).
}

@ObjectType()
export class Ride implements RideRecord {
  @Field(() => Int) id!: number;
  @Field(() => User) createdBy!: User;
  @Field(() => GraphQLISODateTime) timestamp!: string;
  @Field(() => Area) source!: Area;
  @Field(() => Area) destination!: Area;
  @Field(() => [User]) riders!: User[];
}

@ObjectType()
export class Worker implements WorkerRecord {
  @Field() id!: string;
  @Field(() => Int) pid!: number;
  @Field(() => String, { nullable: true }) containerId!: string | null;
  @Field(() => WorkerRole) role!: WorkerRoleName;
  @Field(() => Int) appliedSeq!: number;
  @Field(() => GraphQLISODateTime) startedAt!: string;
}

@ObjectType()
export class Cluster implements ClusterRecord {
  @Field(() => Worker, { nullable: true }) master!: Worker | null;
  @Field(() => [Worker]) slaves!: Worker[];
  @Field(() => Int) epoch!: number;
  @Field(() => Int) lastSeq!: number;
  @Field() runtime!: string;
  @Field(() => Int) desiredSlaves!: number;
  @Field(() => Int) readsThisInterval!: number;
}

@ObjectType()
export class ClusterEvent implements ClusterEventRecord {
  @Field(() => ClusterEventType) type!: ClusterEventTypeName;
  @Field(() => GraphQLISODateTime) at!: string;
  @Field(() => String, { nullable: true }) workerId?: string | null;
  @Field(() => Int, { nullable: true }) pid?: number | null;
  @Field(() => Int, { nullable: true }) epoch?: number | null;
  @Field(() => Int, { nullable: true }) fromSlaves?: number | null;
  @Field(() => Int, { nullable: true }) toSlaves?: number | null;
  @Field(() => String, { nullable: true }) reason?: string | null;
}
