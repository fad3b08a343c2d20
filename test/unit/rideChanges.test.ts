import { rideChangesOf } from '../../gateway/live/rideChanges';
import { AT, entry, ride } from './logEntries';

describe('ride changes of a log entry', () => {
  it('a created ride: its route, itself and its creator', () => {
    const [change] = rideChangesOf(entry(7, 'createRide', {}, ride()), AT) as Exclude<ReturnType<typeof rideChangesOf>, 'reset'>;
    expect(change).toMatchObject({ type: 'RIDE_CREATED', seq: 7, rideId: 7, rider: null });
    expect(change.keys).toEqual(['route:2:4', 'ride:7', 'user:asha']);
  });

  it('a join: the rider as the ride lists them, and the rider among the keys', () => {
    const [change] = rideChangesOf(entry(9, 'joinRide', { rideId: 7, username: 'ravi', joinedAt: AT }, ride(['ravi'])), AT) as Exclude<ReturnType<typeof rideChangesOf>, 'reset'>;
    expect(change).toMatchObject({ type: 'RIDE_JOINED', rider: { username: 'ravi' } });
    expect(change.keys).toEqual(['route:2:4', 'ride:7', 'user:asha', 'user:ravi']);
  });

  it('a join reaches the riders the ride already had: the ride is among the rides they joined', () => {
    const [change] = rideChangesOf(entry(9, 'joinRide', { rideId: 7, username: 'ravi', joinedAt: AT }, ride(['mira', 'ravi'])), AT) as Exclude<
      ReturnType<typeof rideChangesOf>,
      'reset'
    >;
    expect(change.keys).toEqual(['route:2:4', 'ride:7', 'user:asha', 'user:ravi', 'user:mira']);
  });

  it('a creator who joins their own ride (or rides in the ride deleted) is one key, so their subscribers hear of it once', () => {
    const [joined] = rideChangesOf(entry(9, 'joinRide', { rideId: 7, username: 'asha', joinedAt: AT }, ride(['asha'])), AT) as Exclude<ReturnType<typeof rideChangesOf>, 'reset'>;
    expect(joined.keys).toEqual(['route:2:4', 'ride:7', 'user:asha']);
    const args = { rideId: 7, source: 2, destination: 4, createdBy: 'asha', riders: ['asha', 'ravi'], more: false };
    const [deleted] = rideChangesOf(entry(10, 'deleteRide', args, true), AT) as Exclude<ReturnType<typeof rideChangesOf>, 'reset'>;
    expect(deleted.keys).toEqual(['route:2:4', 'ride:7', 'user:asha', 'user:ravi']);
  });

  it('a deleted ride reaches its route, creator and riders from what the master logged; too many riders end everything', () => {
    const args = { rideId: 7, source: 2, destination: 4, createdBy: 'asha', riders: ['ravi'], more: false };
    const [change] = rideChangesOf(entry(10, 'deleteRide', args, true), AT) as Exclude<ReturnType<typeof rideChangesOf>, 'reset'>;
    expect(change).toMatchObject({ type: 'RIDE_DELETED', rideId: 7, ride: null });
    expect(change.keys).toEqual(['route:2:4', 'ride:7', 'user:asha', 'user:ravi']);
    expect(rideChangesOf(entry(10, 'deleteRide', { ...args, more: true }, true), AT)).toBe('reset');
    // An entry from before routes were logged reaches the ride's own subscribers only.
    expect((rideChangesOf(entry(10, 'deleteRide', { rideId: 7 }, true), AT) as Array<{ keys: readonly string[] }>)[0].keys).toEqual(['ride:7']);
  });

  it("a deleted user: each of their rides; clearDatabase and users with too many rides: 'reset'", () => {
    const changes = rideChangesOf(entry(11, 'deleteUser', { username: 'asha', rides: [{ id: 7, source: 2, destination: 4 }], more: false }, true), AT);
    expect(changes).toEqual([expect.objectContaining({ type: 'RIDE_DELETED', seq: 11, rideId: 7, keys: ['route:2:4', 'ride:7', 'user:asha'] })]);
    expect(rideChangesOf(entry(11, 'deleteUser', { username: 'asha', rides: [], more: true }, true), AT)).toBe('reset');
    // Riders of the deleted user's rides hear of them too (entries before riders were logged have none).
    const withRiders = rideChangesOf(entry(11, 'deleteUser', { username: 'asha', rides: [{ id: 7, source: 2, destination: 4, riders: ['asha', 'ravi'] }], more: false }, true), AT);
    expect(withRiders).toEqual([expect.objectContaining({ rideId: 7, keys: ['route:2:4', 'ride:7', 'user:asha', 'user:ravi'] })]);
    expect(rideChangesOf(entry(12, 'clearDatabase', {}, true), AT)).toBe('reset');
    expect(rideChangesOf(entry(13, 'createUser', { username: 'x' }, {}), AT)).toEqual([]);
  });

  it('a deleted rider leaves the rides of others they joined (RIDE_LEFT), in one ride id order with the rides they took', () => {
    const rider = { username: 'asha', createdAt: AT };
    const args = {
      username: 'asha',
      rides: [{ id: 8, source: 2, destination: 4, riders: [] }],
      left: { rider, rides: [9, 3].map((id) => ({ id, source: 5, destination: 6, createdBy: 'ravi' })) },
      more: false,
    };
    const changes = rideChangesOf(entry(11, 'deleteUser', args, true), AT) as Exclude<ReturnType<typeof rideChangesOf>, 'reset'>;
    expect(changes.map((c) => [c.type, c.rideId])).toEqual([
      ['RIDE_LEFT', 3],
      ['RIDE_DELETED', 8],
      ['RIDE_LEFT', 9],
    ]);
    expect(changes[0]).toMatchObject({ seq: 11, ride: null, rider, keys: ['route:5:6', 'ride:3', 'user:ravi', 'user:asha'] });
  });

  it("a deleted rider's RIDE_LEFT reaches the ride's other riders, as the master logged them", () => {
    const rider = { username: 'asha', createdAt: AT };
    const args = { username: 'asha', rides: [], left: { rider, rides: [{ id: 3, source: 5, destination: 6, createdBy: 'ravi', riders: ['mira', 'ravi'] }] }, more: false };
    const [change] = rideChangesOf(entry(11, 'deleteUser', args, true), AT) as Exclude<ReturnType<typeof rideChangesOf>, 'reset'>;
    expect(change).toMatchObject({ type: 'RIDE_LEFT', keys: ['route:5:6', 'ride:3', 'user:ravi', 'user:asha', 'user:mira'] });
  });
});
