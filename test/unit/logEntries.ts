import type { RideRecord, WriteEntry } from '../../schema';

/** Log entries and the ride records in them, as the master writes them, for the unit tests of their readers. */
export const AT = '2026-01-01T00:00:00.000Z';

/** Ride 7, from area 2 to 4, created by asha, with `riders` joined. */
export const ride = (riders: string[] = []): RideRecord => ({
  id: 7,
  cursor: '2030-01-01T00:00:00.000Z/7',
  createdBy: { username: 'asha', createdAt: AT },
  timestamp: '2030-01-01T00:00:00.000Z',
  source: { id: 2, name: 'Chowdeswari Ward' },
  destination: { id: 4, name: 'Yelahanka Satellite Town' },
  riders: riders.map((username) => ({ username, createdAt: AT })),
});

export const entry = (seq: number, op: string, args: unknown, result: unknown = null): WriteEntry => ({ kind: 'write', epoch: 1, seq, requestId: `r${seq}`, op, args, result });
