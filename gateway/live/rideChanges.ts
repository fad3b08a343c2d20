import { loggedDeleteRideSchema, loggedDeleteUserSchema, type RideRecord, type UserRecord, type WriteEntry } from '../../schema';
import { rideKey, routeKey, userKey } from './dataKeys';
import type { LiveChange, LiveFeed } from './liveFeed';
import type { LogReader } from './logFollower';

/** The live feed as a reader of the log: each entry's ride changes, or a new start. */
export function liveFeedReader(feed: LiveFeed): LogReader {
  return {
    restartAt: (seq) => feed.restartAt(seq),
    take: (entry, at) => {
      const changes = rideChangesOf(entry, at);
      if (changes === 'reset') feed.restartAt(entry.seq + 1);
      else feed.advance(entry.seq, changes);
    },
  };
}

/** What one taken log entry changed, for subscriptions; 'reset' when no list of changes can say it. */
export function rideChangesOf(entry: WriteEntry, at: string): LiveChange[] | 'reset' {
  switch (entry.op) {
    case 'createRide': {
      const ride = entry.result as RideRecord;
      return [liveChange(entry, at, 'RIDE_CREATED', ride.id, ride, null, keysOf(ride.source.id, ride.destination.id, ride.id, [ride.createdBy.username]))];
    }
    case 'joinRide': {
      const ride = entry.result as RideRecord;
      const { username } = entry.args as { username: string };
      const rider = ride.riders.find((u) => u.username === username) ?? null;
      // The riders the ride lists hear of it too: the ride is among the rides they joined.
      // The record holds the first PAGE_SIZE_LIMIT riders; docs/contract.md says so.
      const users = [ride.createdBy.username, username, ...ride.riders.map((u) => u.username)];
      return [liveChange(entry, at, 'RIDE_JOINED', ride.id, ride, rider, keysOf(ride.source.id, ride.destination.id, ride.id, users))];
    }
    case 'deleteRide': {
      const { rideId } = entry.args as { rideId: number };
      const args = loggedDeleteRideSchema.safeParse(entry.args);
      if (args.success && args.data.more) return 'reset';
      // An entry of an earlier version has no route: only the ride's own subscribers hear of it.
      const keys = args.success
        ? keysOf(args.data.source, args.data.destination, rideId, [...(args.data.createdBy ? [args.data.createdBy] : []), ...args.data.riders])
        : [rideKey(rideId)];
      return [liveChange(entry, at, 'RIDE_DELETED', rideId, null, null, keys)];
    }
    case 'deleteUser': {
      const args = loggedDeleteUserSchema.safeParse(entry.args);
      if (!args.success || args.data.more) return 'reset';
      const { username, rides, left } = args.data;
      const changes = [
        ...rides.map((r) => liveChange(entry, at, 'RIDE_DELETED', r.id, null, null, keysOf(r.source, r.destination, r.id, [username, ...r.riders]))),
        // The ride's other riders as logged: absent only past MAX_LOGGED_RIDES (schema/live.ts).
        ...(left
          ? left.rides.map((r) => liveChange(entry, at, 'RIDE_LEFT', r.id, null, left.rider, keysOf(r.source, r.destination, r.id, [r.createdBy, username, ...(r.riders ?? [])])))
          : []),
      ];
      // In ride id order, the order a resume position (seq, then ride) counts in.
      return changes.sort((x, y) => x.rideId! - y.rideId!);
    }
    case 'clearDatabase':
      return 'reset';
    default:
      return [];
  }
}

/**
 * One change, built as a single object literal: every change then has one shape. The
 * spread it replaces (`{ ...base, type, ... }`) took a slow path on Node 20's V8: with
 * it gone, following the log cost ~6 µs less a write (bench/NOTES.md, *Writes*).
 */
const liveChange = (entry: WriteEntry, at: string, type: LiveChange['type'], rideId: number, ride: RideRecord | null, rider: UserRecord | null, keys: string[]): LiveChange => ({
  seq: entry.seq,
  at,
  type,
  rideId,
  ride,
  rider,
  rides: null,
  keys,
});

/**
 * Each key once: a creator may join their own ride (and so be among its riders), and a
 * key listed twice would hand that change to the user's subscribers twice. A Set, not a
 * pairwise scan: a deleted ride lists up to MAX_LOGGED_RIDES riders.
 */
const keysOf = (source: number, destination: number, rideId: number, users: string[]) => [routeKey(source, destination), rideKey(rideId), ...[...new Set(users)].map(userKey)];
