import { z } from 'zod';
import { areaIdSchema, DbaasError, parseArgs, RECORD_SELECTIONS, rideIdSchema, usernameSchema, type FieldSelection, type RideChangeRecord, type RideRecord } from '../../schema';
import type { GqlContext } from '../graphql/context';
import { rideKey, routeKey, userKey } from './dataKeys';
import type { LivePosition, LiveSubscription } from './liveFeed';

/** What a live subscription yields: a message, or the error that ends it (then nothing). */
export type LiveMessage = RideChangeRecord | DbaasError;

/** The arguments every live subscription takes besides its own: where it resumes. */
const resumeArgs = z
  .object({ afterSeq: z.number().int().min(0).nullish(), afterRideId: rideIdSchema.nullish() })
  .refine((a) => a.afterRideId == null || a.afterSeq != null, { message: 'afterRideId needs afterSeq', path: ['afterRideId'] });

/** Where a subscription resumes, or null: it starts from a snapshot. */
function resumePosition(args: unknown): LivePosition | null {
  const a = parseArgs(resumeArgs, args);
  return a.afterSeq == null ? null : { seq: a.afterSeq, rideId: a.afterRideId ?? null };
}

const routeArgs = z
  .object({ source: areaIdSchema, destination: areaIdSchema })
  .refine((a) => a.source !== a.destination, { message: 'source and destination must differ', path: ['destination'] });

/**
 * A subscription's messages as graphql-ws pulls them: the snapshot, if any, then the
 * feed's. Not an async generator: its return() must detach the subscription at once, also
 * while it waits for a change (a generator would only notice at the route's next change).
 * The error that ends a subscription is its last message, which the resolver throws, so
 * the client gets it with its code and the socket's other subscriptions carry on.
 */
class LiveMessages implements AsyncIterableIterator<LiveMessage> {
  constructor(
    private readonly subscription: LiveSubscription,
    private first: RideChangeRecord | null,
  ) {}

  // Not async, and no layer of its own per change: the feed's promise is the answer.
  next(): Promise<IteratorResult<LiveMessage>> {
    if (this.first) {
      const value = this.first;
      this.first = null;
      return Promise.resolve({ done: false, value });
    }
    return this.subscription.next();
  }

  async return(): Promise<IteratorResult<LiveMessage>> {
    this.first = null;
    await this.subscription.return();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * `rides(source, destination, afterSeq, afterRideId)`: with afterSeq, the route's changes after it;
 * without, a SNAPSHOT of the route's upcoming rides (the first page).
 */
export function routeMessages(c: GqlContext, args: unknown): Promise<AsyncIterableIterator<LiveMessage>> {
  const a = parseArgs(routeArgs, args);
  const first = c.service.pages.defaultSize;
  return liveMessages(c, routeKey(a.source, a.destination), resumePosition(args), {
    fields: [{ key: 'rides', field: 'rides', args: { source: a.source, destination: a.destination, first }, select: RECORD_SELECTIONS.Ride }],
    rides: (data) => (data as { rides: RideRecord[] }).rides,
  });
}

/** `ride(id, afterSeq, afterRideId)`: one ride's changes; its SNAPSHOT holds the ride, or none if it does not exist. */
export function rideMessages(c: GqlContext, args: unknown): Promise<AsyncIterableIterator<LiveMessage>> {
  const a = parseArgs(z.object({ id: rideIdSchema }), args);
  return liveMessages(c, rideKey(a.id), resumePosition(args), {
    fields: [{ key: 'ride', field: 'ride', args: { id: a.id }, select: RECORD_SELECTIONS.Ride }],
    rides: (data) => {
      const ride = (data as { ride: RideRecord | null }).ride;
      return ride ? [ride] : [];
    },
  });
}

/**
 * `userRides(username, afterSeq, afterRideId)`: changes of the rides a user created or joined; its
 * SNAPSHOT holds those rides (a page of each list), by timestamp then id.
 */
export function userRideMessages(c: GqlContext, args: unknown): Promise<AsyncIterableIterator<LiveMessage>> {
  const a = parseArgs(z.object({ username: usernameSchema }), args);
  const first = c.service.pages.defaultSize;
  return liveMessages(c, userKey(a.username), resumePosition(args), {
    fields: [
      {
        key: 'user',
        field: 'user',
        args: { username: a.username },
        select: [
          { key: 'created', field: 'ridesCreated', args: { first }, select: RECORD_SELECTIONS.Ride },
          { key: 'joined', field: 'ridesJoined', args: { first }, select: RECORD_SELECTIONS.Ride },
        ],
      },
    ],
    rides: (data) => {
      const user = (data as { user: { created: RideRecord[]; joined: RideRecord[] } | null }).user;
      const byId = new Map([...(user?.created ?? []), ...(user?.joined ?? [])].map((r) => [r.id, r]));
      return [...byId.values()].sort((x, y) => (x.timestamp < y.timestamp ? -1 : x.timestamp > y.timestamp ? 1 : x.id - y.id));
    },
  });
}

/**
 * A subscription to `key`: with a resume position, the changes after it; without, a SNAPSHOT read
 * at a known seq (the selection with its applied seq, one statement), then the changes
 * after that seq. It registers before the snapshot is read, so the changes that arrive
 * meanwhile wait in its buffer: none falls between the two, none comes twice.
 */
async function liveMessages(
  c: GqlContext,
  key: string,
  after: LivePosition | null,
  snapshot: { fields: FieldSelection[]; rides: (data: unknown) => RideRecord[] },
): Promise<AsyncIterableIterator<LiveMessage>> {
  if (after) return new LiveMessages(c.live.subscribe(key, after), null);
  const subscription = c.live.subscribe(key);
  try {
    const read = await c.service.selectionAt(c.request, snapshot.fields);
    const rides = snapshot.rides(JSON.parse(read.data));
    subscription.startAfter(read.seq);
    return new LiveMessages(subscription, { type: 'SNAPSHOT', seq: read.seq, at: new Date().toISOString(), rideId: null, ride: null, rider: null, rides });
  } catch (err) {
    await subscription.return();
    throw err;
  }
}
