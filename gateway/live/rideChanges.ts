import { loggedDeleteRideSchema, loggedDeleteUserSchema, type RideRecord, type WriteEntry } from '../../schema';
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
  const base = { seq: entry.seq, at, rider: null, rides: null };
  switch (entry.op) {
    case 'createRide': {
      const ride = entry.result as RideRecord;
      return [{ ...base, type: 'RIDE_CREATED', rideId: ride.id, ride, keys: keysOf(ride.source.id, ride.destination.id, ride.id, [ride.createdBy.username]) }];
    }
    case 'joinRide': {
      const ride = entry.result as RideRecord;
      const { username } = entry.args as { username: string };
      const rider = ride.riders.find((u) => u.username === username) ?? null;
      return [{ ...base, type: 'RIDE_JOINED', rideId: ride.id, ride, rider, keys: keysOf(ride.source.id, ride.destination.id, ride.id, [ride.createdBy.username, username]) }];
    }
    case 'deleteRide': {
      const { rideId } = entry.args as { rideId: number };
      const args = loggedDeleteRideSchema.safeParse(entry.args);
      if (args.success && args.data.more) return 'reset';
      // An entry of an earlier version has no route: only the ride's own subscribers hear of it.
      const keys = args.success
        ? keysOf(args.data.source, args.data.destination, rideId, [...(args.data.createdBy ? [args.data.createdBy] : []), ...args.data.riders])
        : [rideKey(rideId)];
      return [{ ...base, type: 'RIDE_DELETED', rideId, ride: null, keys }];
    }
    case 'deleteUser': {
      const args = loggedDeleteUserSchema.safeParse(entry.args);
      if (!args.success || args.data.more) return 'reset';
      return args.data.rides.map((r) => ({ ...base, type: 'RIDE_DELETED', rideId: r.id, ride: null, keys: keysOf(r.source, r.destination, r.id, [args.data.username]) }));
    }
    case 'clearDatabase':
      return 'reset';
    default:
      return [];
  }
}

const keysOf = (source: number, destination: number, rideId: number, users: string[]) => [routeKey(source, destination), rideKey(rideId), ...users.map(userKey)];
