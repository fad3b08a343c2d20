import { rideChangesOf } from '../../gateway/live/rideChanges';
import type { RideRecord, WriteEntry } from '../../schema';

const AT = '2026-01-01T00:00:00.000Z';
const ride = (riders: string[] = []): RideRecord => ({
  id: 7,
  cursor: '2030-01-01T00:00:00.000Z/7',
  createdBy: { username: 'asha', createdAt: AT },
  timestamp: '2030-01-01T00:00:00.000Z',
  source: { id: 2, name: 'Chowdeswari Ward' },
  destination: { id: 4, name: 'Yelahanka Satellite Town' },
  riders: riders.map((username) => ({ username, createdAt: AT })),
});
const entry = (seq: number, op: string, args: unknown, result: unknown): WriteEntry => ({ kind: 'write', epoch: 1, seq, requestId: `r${seq}`, op, args, result });

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
    expect(rideChangesOf(entry(12, 'clearDatabase', {}, true), AT)).toBe('reset');
    expect(rideChangesOf(entry(13, 'createUser', { username: 'x' }, {}), AT)).toEqual([]);
  });
});
