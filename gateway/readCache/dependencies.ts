import { z } from 'zod';
import { loggedDeleteRideSchema, loggedDeleteUserSchema, PAGE_SIZE_LIMIT, type FieldSelection, type WriteEntry } from '../../schema';
import { ANY_RIDE_KEY, RIDE_COUNT_KEY, rideKey, routeKey, USERS_KEY, userKey } from '../live/dataKeys';

/**
 * The two halves of exact invalidation, named with the same keys (../live/dataKeys):
 * what a cached answer depends on, read from its selection, and what a write changed,
 * read from its log entry. A write whose keys meet none of an answer's leaves that answer
 * as it was; anything the rules cannot name precisely falls back to a wider key (or, for a
 * write, to everything), never to nothing.
 *
 * Why the keys suffice (areas never change but by clearDatabase, which changes everything;
 * a user only by deleteUser, whose entry names the rides and riders it touches; a ride's
 * own fields never change):
 * - a route's page (`rides`) changes when a ride of that route is created, joined or
 *   deleted, and when time passes its first ride (the answer's expiry, not a key);
 * - `ride(id)` when that ride is created, joined or deleted;
 * - `user(name)`'s ride lists when a ride the user created or joined is created, joined
 *   (the log names every rider) or deleted (the log names creator and riders);
 * - a user met anywhere else (a ride's creator or riders, the users page) whose ride lists
 *   are selected: on any ride write (ANY_RIDE_KEY), since nothing names that user.
 */

/** The keys an answer of `fields` depends on, or null when it must not be cached (a field these rules do not know). */
export function answerDependencies(fields: readonly FieldSelection[]): string[] | null {
  const keys = new Set<string>();
  for (const f of fields) {
    const args = f.args ?? {};
    switch (f.field) {
      case '__typename':
      case 'areas':
        break;
      case 'rideCount':
        keys.add(RIDE_COUNT_KEY);
        break;
      case 'ride':
        if (typeof args.id !== 'number') return null;
        keys.add(rideKey(args.id));
        ridesIn(f.select, keys);
        break;
      case 'rides':
        if (typeof args.source !== 'number' || typeof args.destination !== 'number') return null;
        keys.add(routeKey(args.source, args.destination));
        ridesIn(f.select, keys);
        break;
      case 'user':
        if (typeof args.username !== 'string') return null;
        keys.add(userKey(args.username));
        usersIn(f.select, keys, true);
        break;
      case 'users':
        keys.add(USERS_KEY);
        usersIn(f.select, keys, false);
        break;
      default:
        return null;
    }
  }
  return [...keys];
}

/** Inside a ride: its creator and riders, users named by nothing the writes log. */
function ridesIn(select: readonly FieldSelection[] | undefined, keys: Set<string>): void {
  for (const f of select ?? []) if (f.field === 'createdBy' || f.field === 'riders') usersIn(f.select, keys, false);
}

/** Inside a user: its ride lists are covered by its own key only when the root named it. */
function usersIn(select: readonly FieldSelection[] | undefined, keys: Set<string>, named: boolean): void {
  for (const f of select ?? []) {
    if (f.field !== 'ridesCreated' && f.field !== 'ridesJoined') continue;
    if (!named) keys.add(ANY_RIDE_KEY);
    ridesIn(f.select, keys);
  }
}

/** What the master logs as a ride's record, as far as these rules read it. */
const loggedRideSchema = z.object({
  id: z.number(),
  source: z.object({ id: z.number() }),
  destination: z.object({ id: z.number() }),
  createdBy: z.object({ username: z.string() }),
  riders: z.array(z.object({ username: z.string() })),
});
const usernameArgs = z.object({ username: z.string() });

/** Every key a logged write may have changed; 'everything' when the entry cannot say. */
export function keysChangedBy(entry: WriteEntry): string[] | 'everything' {
  switch (entry.op) {
    case 'createUser': {
      const args = usernameArgs.safeParse(entry.args);
      return args.success ? [userKey(args.data.username), USERS_KEY] : 'everything';
    }
    case 'createRide': {
      const ride = loggedRideSchema.safeParse(entry.result);
      if (!ride.success) return 'everything';
      const r = ride.data;
      return [routeKey(r.source.id, r.destination.id), rideKey(r.id), userKey(r.createdBy.username), RIDE_COUNT_KEY, ANY_RIDE_KEY];
    }
    case 'joinRide': {
      const ride = loggedRideSchema.safeParse(entry.result);
      const joiner = usernameArgs.safeParse(entry.args);
      // A record holds one page of riders: at the limit, some riders may be missing from it.
      if (!ride.success || !joiner.success || ride.data.riders.length >= PAGE_SIZE_LIMIT) return 'everything';
      const r = ride.data;
      const users = [r.createdBy.username, joiner.data.username, ...r.riders.map((u) => u.username)];
      return [routeKey(r.source.id, r.destination.id), rideKey(r.id), ...new Set(users.map(userKey)), ANY_RIDE_KEY];
    }
    case 'deleteRide': {
      const args = loggedDeleteRideSchema.safeParse(entry.args);
      // Entries of an earlier version name no creator; `more`: riders left unnamed.
      if (!args.success) return 'everything';
      const a = args.data;
      if (a.more || !a.createdBy) return 'everything';
      const users = [a.createdBy, ...a.riders];
      return [routeKey(a.source, a.destination), rideKey(a.rideId), ...new Set(users.map(userKey)), RIDE_COUNT_KEY, ANY_RIDE_KEY];
    }
    case 'deleteUser': {
      const args = loggedDeleteUserSchema.safeParse(entry.args);
      if (!args.success) return 'everything';
      const { username, rides, left, more } = args.data;
      // `more`: past the bound the entry lists no rides. Riders of joined rides are absent
      // when they did not fit; entries of earlier versions lack `left` or those riders
      // (and, earlier still, the riders of the user's own rides, logged before `left` was).
      if (more || !left || left.rides.some((r) => r.riders === undefined)) return 'everything';
      const keys = [userKey(username), USERS_KEY];
      if (rides.length) keys.push(RIDE_COUNT_KEY);
      // Unnamed users' ride lists change only if the user had rides or rode in some.
      if (rides.length || left.rides.length) keys.push(ANY_RIDE_KEY);
      // Its rides go, with them the ride lists of their riders; the rides it joined lose it
      // from their riders, as their creators and other riders see them.
      for (const r of rides) keys.push(routeKey(r.source, r.destination), rideKey(r.id), ...r.riders.map(userKey));
      for (const r of left.rides) keys.push(routeKey(r.source, r.destination), rideKey(r.id), userKey(r.createdBy), ...(r.riders ?? []).map(userKey));
      return [...new Set(keys)];
    }
    default:
      // clearDatabase, and any operation of a later version.
      return 'everything';
  }
}
