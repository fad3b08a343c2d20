import type { EventEmitter } from 'node:events';
import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Args, ArgsType, Ctx, Field, FieldResolver, GraphQLISODateTime, Info, Int, Mutation, Query, Resolver, Root, Subscription, type PubSub } from 'type-graphql';
import { Area, Cluster, ClusterEvent, ClusterEventType, Ride, RideChange, User, Worker } from '../../schema/graphql';
import {
  badInput,
  DbaasError,
  parseArgs,
  rideCursorKey,
  rideCursorSchema,
  type ClusterEventRecord,
  type ClusterRecord,
  type RideChangeRecord,
  type RideRecord,
  type UserRecord,
  type UserRidesRecord,
} from '../../schema';
import { requireAdmin } from '../errors';
import { memoOf, requestOf, type GqlContext } from './context';
import { EventFanOut } from './eventFanOut';
import { pageSize } from '../pages';
import { rideMessages, routeMessages, userRideMessages, type LiveMessage } from '../live/liveMessages';

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
    scalingMode: c.autoscaler.mode,
    orchestrator: c.orchestrator.orchestratorGateway,
  };
}

// Descriptions say what a client developer needs: units, order, errors, who may call.
// The root types' own descriptions are set where the schema is built (./schema.ts).

const ADMIN = 'Admin: needs `Authorization: Bearer <DBAAS_ADMIN_TOKEN>`, else FORBIDDEN.';
const AREA_ARG = 'An area id (see `areas`); an unknown id is BAD_USER_INPUT.';
const USERNAME_ARG = 'Exact, case-sensitive username: 1-64 characters of A-Z a-z 0-9 _ . -';
const RIDE_ID_ARG = 'A ride id as `createRide` or a query returned it (a log position, not a row counter).';
const PAGE = 'A page shorter than `first` is the last; a page ends where the next one starts, so walking pages visits every row once even while rows are added.';
const FIRST_ARG = 'Rows in the page: 1 to PAGE_SIZE_MAX (default 1000), else BAD_USER_INPUT; null for PAGE_SIZE_DEFAULT (default 100).';
const AFTER_RIDE_ARG = 'The `cursor` of the last ride of the previous page; null for the first page.';

@Resolver()
export class QueryResolver {
  @Query(() => [User], { description: `Users by username, one page: at most \`first\`, after the username \`after\`. ${PAGE}` })
  users(
    @Arg('first', () => Int, { nullable: true, description: FIRST_ARG }) first: number | null,
    @Arg('after', () => String, { nullable: true, description: 'The last username of the previous page; null for the first page.' }) after: string | null,
    @Ctx() c: GqlContext,
  ): Promise<UserRecord[]> {
    return c.service.users(c.request, { first, after });
  }

  @Query(() => User, { nullable: true, description: 'The user with this username, or null if there is none.' })
  user(@Arg('username', { description: USERNAME_ARG }) username: string, @Ctx() c: GqlContext): Promise<UserRecord | null> {
    return c.service.user(c.request, username);
  }

  @Query(() => [Ride], {
    description: `Rides from \`source\` to \`destination\`, by \`timestamp\`, then \`id\`, one page: at most \`first\`, after the ride whose \`cursor\` is \`after\`. ${PAGE}`,
  })
  rides(
    @Arg('source', () => Int, { description: `Where the rides start. ${AREA_ARG}` }) source: number,
    @Arg('destination', () => Int, { description: `Where the rides end. ${AREA_ARG}` }) destination: number,
    // Nullable with a default, as docs/contract.md section 3.2 has it: an explicit null means the default.
    @Arg('upcomingOnly', () => Boolean, {
      nullable: true,
      defaultValue: true,
      description: 'true (the default, also for null): only rides whose `timestamp` is still to come; false: past rides too.',
    })
    upcomingOnly: boolean | null,
    @Arg('first', () => Int, { nullable: true, description: FIRST_ARG }) first: number | null,
    @Arg('after', () => String, { nullable: true, description: AFTER_RIDE_ARG }) after: string | null,
    @Ctx() c: GqlContext,
  ): Promise<RideRecord[]> {
    return c.service.rides(c.request, source, destination, upcomingOnly ?? true, { first, after });
  }

  @Query(() => Ride, { nullable: true, description: 'The ride with this id, or null if there is none (or it was deleted).' })
  ride(@Arg('id', () => Int, { description: RIDE_ID_ARG }) id: number, @Ctx() c: GqlContext): Promise<RideRecord | null> {
    return c.service.ride(c.request, id);
  }

  @Query(() => Int, { description: 'How many rides there are, past and upcoming.' })
  rideCount(@Ctx() c: GqlContext): Promise<number> {
    return c.service.rideCount(c.request);
  }

  @Query(() => [Area], { description: 'Every area, by id: the ids `rides` and `createRide` accept.' })
  areas(@Ctx() c: GqlContext) {
    return c.service.areas(c.request);
  }

  @Query(() => [Worker], { description: 'Every live worker, STARTING ones included, sorted by pid ascending. Answered by the gateway (no read).' })
  workers(@Ctx() c: GqlContext) {
    return c.orchestrator.workers();
  }

  @Query(() => Cluster, { description: 'Master, slaves, epoch, log position and scaling, as this gateway sees them. Answered by the gateway (no read).' })
  cluster(@Ctx() c: GqlContext): ClusterRecord {
    return clusterOf(c);
  }

  @Query(() => Int, {
    description:
      'Requests that touched rideshare data (GraphQL operations with a data field, REST calls) that this gateway served since it started or since `resetRequestCount`: the original RideShare `_count`.',
  })
  requestCount(@Ctx() c: GqlContext): number {
    return c.counter.count;
  }
}

@Resolver()
export class MutationResolver {
  @Mutation(() => User, { description: 'Creates a user. CONFLICT if the username is taken.' })
  createUser(
    @Arg('username', { description: 'The new unique name: 1-64 characters of A-Z a-z 0-9 _ . -' }) username: string,
    @Arg('password', {
      description: "The SHA-1 digest of the user's password, exactly 40 hex digits, as the original clients send it. The gateway keeps only a salted scrypt hash of it.",
    })
    password: string,
    @Ctx() c: GqlContext,
  ) {
    return c.service.createUser(c.request, username, password);
  }

  @Mutation(() => Boolean, {
    description: 'Deletes a user, the rides they created and their place in rides they joined. true on success; NOT_FOUND if there is no such user.',
  })
  deleteUser(@Arg('username', { description: USERNAME_ARG }) username: string, @Ctx() c: GqlContext) {
    return c.service.deleteUser(c.request, username);
  }

  @Mutation(() => Ride, {
    description:
      'Offers a ride and returns it with its id, the log position of this write. NOT_FOUND if `createdBy` does not exist; BAD_USER_INPUT for an unknown area or the same source and destination.',
  })
  createRide(
    @Arg('createdBy', { description: `The user offering the ride; must exist. ${USERNAME_ARG}` }) createdBy: string,
    @Arg('timestamp', () => GraphQLISODateTime, { description: 'When the ride leaves: ISO-8601 with a zone (e.g. 2030-05-01T08:30:00Z), kept and returned in UTC.' })
    timestamp: Date,
    @Arg('source', () => Int, { description: `Where the ride starts. ${AREA_ARG}` }) source: number,
    @Arg('destination', () => Int, { description: `Where the ride ends, another area than \`source\`. ${AREA_ARG}` }) destination: number,
    @Ctx() c: GqlContext,
  ) {
    return c.service.createRide(c.request, { createdBy, timestamp: timestamp.toISOString(), source, destination });
  }

  @Mutation(() => Ride, {
    description:
      "Adds a user to a ride's riders and returns the ride. Joining a ride twice changes nothing. NOT_FOUND if the ride or the user does not exist; CONFLICT if the ride already has MAX_RIDERS_PER_RIDE riders (default 100) and the user is not one of them, or has more than that.",
  })
  joinRide(
    @Arg('rideId', () => Int, { description: `The ride to join. ${RIDE_ID_ARG}` }) rideId: number,
    @Arg('username', { description: `The user joining; must exist. ${USERNAME_ARG}` }) username: string,
    @Ctx() c: GqlContext,
  ) {
    return c.service.joinRide(c.request, rideId, username);
  }

  @Mutation(() => Boolean, { description: 'Deletes a ride and its riders list. true on success; NOT_FOUND if there is no such ride.' })
  deleteRide(@Arg('rideId', () => Int, { description: `The ride to delete. ${RIDE_ID_ARG}` }) rideId: number, @Ctx() c: GqlContext) {
    return c.service.deleteRide(c.request, rideId);
  }

  @Mutation(() => Boolean, { description: `Deletes every user, ride and membership on every replica (areas stay); returns true. ${ADMIN}` })
  clearDatabase(@Ctx() c: GqlContext) {
    requireAdmin(c.request.isAdmin);
    return c.service.clearDatabase(c.request);
  }

  @Mutation(() => Worker, {
    description: `SIGKILLs the master's process or container and returns it, for failover drills: a slave is elected (the epoch rises) and a replacement under the same id joins as a slave. UNAVAILABLE when there is no master. ${ADMIN}`,
  })
  crashMaster(@Ctx() c: GqlContext) {
    requireAdmin(c.request.isAdmin);
    return c.orchestrator.crashMaster();
  }

  @Mutation(() => Worker, {
    description: `SIGKILLs the slave with the highest pid and returns it; a replacement under the same id takes its place. UNAVAILABLE when there is no slave. ${ADMIN}`,
  })
  crashSlave(@Ctx() c: GqlContext) {
    requireAdmin(c.request.isAdmin);
    return c.orchestrator.crashSlave();
  }

  @Mutation(() => Cluster, {
    description: `Sets who decides the slave count, and returns the cluster. A number is a manual target: slaves are started, or the highest-pid ones stopped, at once, and the target holds whatever the load (\`scalingMode\` MANUAL) until \`count: null\` hands the slaves back to the autoscaler (AUTOMATIC), whose next run sizes them by read load. ${ADMIN}`,
  })
  async scaleSlaves(
    @Arg('count', () => Int, {
      nullable: true,
      description: 'The slave target, an integer within MIN_SLAVES..MAX_SLAVES (else BAD_USER_INPUT); or null for automatic scaling. Required, even as null.',
    })
    count: number | null | undefined,
    @Ctx() c: GqlContext,
  ): Promise<ClusterRecord> {
    requireAdmin(c.request.isAdmin);
    // Nullable so that null can mean "automatic"; an omitted count is more likely a
    // mistake than a request to hand the slaves back to the autoscaler.
    if (count === undefined) throw badInput('count is required: a number sets a manual slave target, null returns to automatic scaling');
    if (count === null) await c.autoscaler.resume();
    else await c.autoscaler.hold(count);
    return clusterOf(c);
  }

  @Mutation(() => Boolean, { description: `Sets \`requestCount\` back to 0; returns true. ${ADMIN}` })
  resetRequestCount(@Ctx() c: GqlContext): boolean {
    requireAdmin(c.request.isAdmin);
    c.counter.count = 0;
    return true;
  }
}

@Resolver(() => User)
export class UserFieldsResolver {
  private ridesOf(user: UserRecord, c: GqlContext, info: GraphQLResolveInfo): Promise<UserRidesRecord> {
    const key = `userRides:${user.username}`;
    const memo = memoOf(c, info);
    let pending = memo.get(key) as Promise<UserRidesRecord> | undefined;
    if (!pending) {
      pending = c.service.userRides(requestOf(c, info), user.username);
      memo.set(key, pending);
    }
    return pending;
  }

  @FieldResolver(() => [Ride], { description: `The rides this user offered, past and upcoming, by \`timestamp\`, then \`id\`, one page. ${PAGE}` })
  async ridesCreated(
    @Root() user: UserRecord,
    @Arg('first', () => Int, { nullable: true, description: FIRST_ARG }) first: number | null,
    @Arg('after', () => String, { nullable: true, description: AFTER_RIDE_ARG }) after: string | null,
    @Ctx() c: GqlContext,
    @Info() info: GraphQLResolveInfo,
  ): Promise<RideRecord[]> {
    return ridePage((await this.ridesOf(user, c, info)).created, first, after, c);
  }

  @FieldResolver(() => [Ride], { description: `The rides this user joined (\`joinRide\`), past and upcoming, by \`timestamp\`, then \`id\`, one page. ${PAGE}` })
  async ridesJoined(
    @Root() user: UserRecord,
    @Arg('first', () => Int, { nullable: true, description: FIRST_ARG }) first: number | null,
    @Arg('after', () => String, { nullable: true, description: AFTER_RIDE_ARG }) after: string | null,
    @Ctx() c: GqlContext,
    @Info() info: GraphQLResolveInfo,
  ): Promise<RideRecord[]> {
    return ridePage((await this.ridesOf(user, c, info)).joined, first, after, c);
  }
}

@Resolver(() => Ride)
export class RideFieldsResolver {
  @FieldResolver(() => [User], {
    description: 'The users who joined the ride (`joinRide`), in the order they joined, at most `first`. The creator is listed only if they joined too.',
  })
  riders(@Root() ride: RideRecord, @Arg('first', () => Int, { nullable: true, description: FIRST_ARG }) first: number | null, @Ctx() c: GqlContext): UserRecord[] {
    return ride.riders.slice(0, pageSize(first, c.service.pages));
  }
}

/** A page of a user's rides, cut from the lists of the user's one read (same order and cursor as a worker's keyset). */
function ridePage(rides: RideRecord[], first: number | null | undefined, after: string | null | undefined, c: GqlContext): RideRecord[] {
  const size = pageSize(first, c.service.pages);
  if (after == null) return rides.slice(0, size);
  const from = rideCursorKey(parseArgs(rideCursorSchema, after));
  const start = rides.findIndex((r) => r.timestamp > from.ts || (r.timestamp === from.ts && r.id > from.id));
  return start < 0 ? [] : rides.slice(start, start + size);
}

/** Where a live subscription resumes: the arguments `rides`, `ride` and `userRides` share (gateway/live/liveMessages.ts parses them). */
@ArgsType()
class LiveResume {
  @Field(() => Int, { nullable: true, description: 'Resume after this seq (the last `seq` this subscription sent) instead of starting from a snapshot.' })
  afterSeq?: number | null;

  @Field(() => Int, {
    nullable: true,
    description:
      "With `afterSeq`: resume after the change of this ride at that seq (the last change's `rideId`). One `deleteUser` can give a subscription several changes at one seq, in `rideId` order; without this, a resume starts after all of them.",
  })
  afterRideId?: number | null;
}

/** A live message as the subscription field returns it: the error that ends a subscription is thrown, so the client gets its code. */
function liveMessage(message: LiveMessage): RideChangeRecord {
  if (message instanceof DbaasError) throw message;
  return message;
}

/** Topic of the cluster event stream (the orchestrator's 'event'). */
export const CLUSTER_EVENTS = 'event';

/** type-graphql's PubSub over the orchestrator's events (CLUSTER_EVENTS only). */
export function clusterEventsPubSub(source: EventEmitter): PubSub & { readonly open: number } {
  const events = new EventFanOut<ClusterEventRecord>(source, CLUSTER_EVENTS);
  return {
    get open() {
      return events.size;
    },
    publish: (topic, payload) => void source.emit(topic, payload),
    subscribe: (topic) => {
      if (topic !== CLUSTER_EVENTS) throw new Error(`no such topic: ${topic}`);
      return events.subscribe();
    },
  };
}

@Resolver()
export class SubscriptionResolver {
  @Subscription(() => ClusterEvent, {
    description: 'Every join, leave, election and scaling change, live, from the moment of subscribing (no history).',
    topics: CLUSTER_EVENTS,
    filter: ({ payload, args }: { payload: ClusterEventRecord; args: { types?: string[] | null } }) => !args.types?.length || args.types.includes(payload.type),
  })
  clusterEvents(
    @Root() event: ClusterEventRecord,
    @Arg('types', () => [ClusterEventType], { nullable: true, description: 'Only events of these types; null or empty for all.' }) _types?: ClusterEventType[],
  ): ClusterEventRecord {
    return event;
  }

  @Subscription(() => RideChange, {
    description:
      "Live changes of one route's rides, read from the durable log: first a SNAPSHOT of its upcoming rides as of a seq, then every RIDE_CREATED, RIDE_JOINED, RIDE_LEFT and RIDE_DELETED after that seq, in seq order, each once. With `afterSeq` (the last `seq` you saw), no snapshot: every change after it, then live — across reconnects, gateway restarts and failovers. SNAPSHOT_REQUIRED when the gateway no longer keeps the changes after `afterSeq` (LIVE_HISTORY_CHANGES, LIVE_HISTORY_BYTES); SLOW_CONSUMER, with where to resume, when a client stops reading.",
    subscribe: ({ args, context }) => routeMessages(context as GqlContext, args),
  })
  rides(
    @Root() message: LiveMessage,
    @Arg('source', () => Int, { description: 'The area the rides start from.' }) _source: number,
    @Arg('destination', () => Int, { description: 'The area they go to.' }) _destination: number,
    @Args(() => LiveResume) _resume: LiveResume,
  ): RideChangeRecord {
    return liveMessage(message);
  }

  @Subscription(() => RideChange, {
    description:
      'Live changes of one ride, from the log: a SNAPSHOT (`rides` holds the ride, or nothing if it does not exist), then its RIDE_JOINED, RIDE_LEFT and RIDE_DELETED changes; `afterSeq` resumes as for `rides`.',
    subscribe: ({ args, context }) => rideMessages(context as GqlContext, args),
  })
  ride(@Root() message: LiveMessage, @Arg('id', () => Int, { description: 'The ride.' }) _id: number, @Args(() => LiveResume) _resume: LiveResume): RideChangeRecord {
    return liveMessage(message);
  }

  @Subscription(() => RideChange, {
    description:
      "Live changes of the rides a user created or joined, from the log: a SNAPSHOT of them (a page of each), then RIDE_CREATED (by the user), RIDE_JOINED and RIDE_LEFT (of the user's rides, or by the user) and RIDE_DELETED (of rides the user created or joined); `afterSeq` resumes as for `rides`.",
    subscribe: ({ args, context }) => userRideMessages(context as GqlContext, args),
  })
  userRides(@Root() message: LiveMessage, @Arg('username', { description: 'The user.' }) _username: string, @Args(() => LiveResume) _resume: LiveResume): RideChangeRecord {
    return liveMessage(message);
  }
}

export const resolvers = [QueryResolver, MutationResolver, UserFieldsResolver, RideFieldsResolver, SubscriptionResolver] as const;
