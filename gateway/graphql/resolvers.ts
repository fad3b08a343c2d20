import { on, type EventEmitter } from 'node:events';
import { Arg, Ctx, FieldResolver, GraphQLISODateTime, Int, Mutation, Query, Resolver, Root, Subscription, type PubSub } from 'type-graphql';
import { Area, Cluster, ClusterEvent, ClusterEventType, Ride, User, Worker } from '../../schema/graphql';
import type { ClusterEventRecord, ClusterRecord, RideRecord, UserRecord, UserRidesRecord } from '../../schema';
import { requireAdmin } from '../errors';
import type { GqlContext } from './context';

function clusterOf(c: GqlContext): ClusterRecord {
  const master = c.orchestrator.master();
  return {
    master,
    slaves: c.orchestrator.slaves(),
    epoch: c.orchestrator.epoch,
    lastSeq: Math.max(c.service.lastSeq, master?.appliedSeq ?? 0),
    runtime: c.orchestrator.runtimeName,
    desiredSlaves: c.orchestrator.desiredSlaves,
    readsThisInterval: c.autoscaler.readsThisInterval,
  };
}

@Resolver()
export class QueryResolver {
  @Query(() => [User])
  users(@Ctx() c: GqlContext): Promise<UserRecord[]> {
    return c.service.users(c.request);
  }

  @Query(() => User, { nullable: true })
  user(@Arg('username') username: string, @Ctx() c: GqlContext): Promise<UserRecord | null> {
    return c.service.user(c.request, username);
  }

  @Query(() => [Ride], { description: 'Rides between two areas, by timestamp.' })
  rides(
    @Arg('source', () => Int) source: number,
    @Arg('destination', () => Int) destination: number,
    // Nullable with a default, as DESIGN 3.2 has it: an explicit null means the default.
    @Arg('upcomingOnly', () => Boolean, { nullable: true, defaultValue: true }) upcomingOnly: boolean | null,
    @Ctx() c: GqlContext,
  ): Promise<RideRecord[]> {
    return c.service.rides(c.request, source, destination, upcomingOnly ?? true);
  }

  @Query(() => Ride, { nullable: true })
  ride(@Arg('id', () => Int) id: number, @Ctx() c: GqlContext): Promise<RideRecord | null> {
    return c.service.ride(c.request, id);
  }

  @Query(() => Int)
  rideCount(@Ctx() c: GqlContext): Promise<number> {
    return c.service.rideCount(c.request);
  }

  @Query(() => [Area])
  areas(@Ctx() c: GqlContext) {
    return c.service.areas(c.request);
  }

  @Query(() => [Worker], { description: 'Every live worker, sorted by pid ascending.' })
  workers(@Ctx() c: GqlContext) {
    return c.orchestrator.workers();
  }

  @Query(() => Cluster)
  cluster(@Ctx() c: GqlContext): ClusterRecord {
    return clusterOf(c);
  }

  @Query(() => Int, { description: 'API requests since the last reset.' })
  requestCount(@Ctx() c: GqlContext): number {
    return c.counter.count;
  }
}

@Resolver()
export class MutationResolver {
  @Mutation(() => User)
  createUser(@Arg('username') username: string, @Arg('password') password: string, @Ctx() c: GqlContext) {
    return c.service.createUser(c.request, username, password);
  }

  @Mutation(() => Boolean, { description: "Also deletes the user's rides and memberships." })
  deleteUser(@Arg('username') username: string, @Ctx() c: GqlContext) {
    return c.service.deleteUser(c.request, username);
  }

  @Mutation(() => Ride)
  createRide(
    @Arg('createdBy') createdBy: string,
    @Arg('timestamp', () => GraphQLISODateTime) timestamp: Date,
    @Arg('source', () => Int) source: number,
    @Arg('destination', () => Int) destination: number,
    @Ctx() c: GqlContext,
  ) {
    return c.service.createRide(c.request, { createdBy, timestamp: timestamp.toISOString(), source, destination });
  }

  @Mutation(() => Ride, { description: 'Idempotent.' })
  joinRide(@Arg('rideId', () => Int) rideId: number, @Arg('username') username: string, @Ctx() c: GqlContext) {
    return c.service.joinRide(c.request, rideId, username);
  }

  @Mutation(() => Boolean)
  deleteRide(@Arg('rideId', () => Int) rideId: number, @Ctx() c: GqlContext) {
    return c.service.deleteRide(c.request, rideId);
  }

  @Mutation(() => Boolean, { description: 'Admin.' })
  clearDatabase(@Ctx() c: GqlContext) {
    requireAdmin(c.request.isAdmin);
    return c.service.clearDatabase(c.request);
  }

  @Mutation(() => Worker, { description: "Admin: kills the master's process/container, returns it." })
  crashMaster(@Ctx() c: GqlContext) {
    requireAdmin(c.request.isAdmin);
    return c.orchestrator.crashMaster();
  }

  @Mutation(() => Worker, { description: 'Admin: kills the slave with the highest pid, returns it.' })
  crashSlave(@Ctx() c: GqlContext) {
    requireAdmin(c.request.isAdmin);
    return c.orchestrator.crashSlave();
  }

  @Mutation(() => Cluster, { description: 'Admin: manual slave target, within MIN_SLAVES..MAX_SLAVES.' })
  async scaleSlaves(@Arg('count', () => Int) count: number, @Ctx() c: GqlContext): Promise<ClusterRecord> {
    requireAdmin(c.request.isAdmin);
    await c.orchestrator.scaleSlaves(count, 'manual scaleSlaves');
    return clusterOf(c);
  }

  @Mutation(() => Boolean, { description: 'Admin.' })
  resetRequestCount(@Ctx() c: GqlContext): boolean {
    requireAdmin(c.request.isAdmin);
    c.counter.count = 0;
    return true;
  }
}

@Resolver(() => User)
export class UserFieldsResolver {
  private ridesOf(user: UserRecord, c: GqlContext): Promise<UserRidesRecord> {
    const key = `userRides:${user.username}`;
    let pending = c.memo.get(key) as Promise<UserRidesRecord> | undefined;
    if (!pending) {
      pending = c.service.userRides(c.request, user.username);
      c.memo.set(key, pending);
    }
    return pending;
  }

  @FieldResolver(() => [Ride])
  async ridesCreated(@Root() user: UserRecord, @Ctx() c: GqlContext): Promise<RideRecord[]> {
    return (await this.ridesOf(user, c)).created;
  }

  @FieldResolver(() => [Ride])
  async ridesJoined(@Root() user: UserRecord, @Ctx() c: GqlContext): Promise<RideRecord[]> {
    return (await this.ridesOf(user, c)).joined;
  }
}

/** Topic of the cluster event stream (the orchestrator's 'event'). */
export const CLUSTER_EVENTS = 'event';

/**
 * type-graphql's PubSub over the orchestrator's events: each subscriber gets its own
 * listener, removed when the client unsubscribes (the iterator's return).
 */
export function clusterEventsPubSub(source: EventEmitter): PubSub {
  return {
    publish: (topic, payload) => void source.emit(topic, payload),
    subscribe: (topic) =>
      (async function* () {
        for await (const [event] of on(source, topic)) yield event as ClusterEventRecord;
      })(),
  };
}

@Resolver()
export class SubscriptionResolver {
  @Subscription(() => ClusterEvent, {
    description: 'Every join, leave, election and scaling change, live.',
    topics: CLUSTER_EVENTS,
    filter: ({ payload, args }: { payload: ClusterEventRecord; args: { types?: string[] | null } }) => !args.types?.length || args.types.includes(payload.type),
  })
  clusterEvents(
    @Root() event: ClusterEventRecord,
    @Arg('types', () => [ClusterEventType], { nullable: true }) _types?: ClusterEventType[],
  ): ClusterEventRecord {
    return event;
  }
}

export const resolvers = [QueryResolver, MutationResolver, UserFieldsResolver, SubscriptionResolver] as const;
