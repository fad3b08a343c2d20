import { z } from 'zod';
import { AREAS, isKnownArea } from './areas';

/** Argument values as the catalogue accepts them, shared by fixed operations and selections. */
export const usernameSchema = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'username must be 1-64 of A-Z a-z 0-9 _ . -');
/** What clients send: a SHA-1 digest, never stored as is. */
export const passwordSchema = z.string().regex(/^[0-9a-fA-F]{40}$/, 'password must be exactly 40 hex digits (SHA-1)');
export const areaIdSchema = z
  .number()
  .int()
  .refine(isKnownArea, { error: (issue) => `unknown area ${String(issue.input)}: the areas are ${AREAS[0].id}-${AREAS[AREAS.length - 1].id} (query areas)` });
export const rideIdSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
export const isoTimeSchema = z.iso.datetime({ offset: true }).transform((s) => new Date(s).toISOString());

/**
 * Pages. Every list that grows with the data answers at most `first` rows, walked in a
 * fixed order by keyset (no OFFSET): `after` is where the previous page ended. The gateway
 * fills `first` from PAGE_SIZE_DEFAULT and refuses more than PAGE_SIZE_MAX; a worker
 * refuses more than PAGE_SIZE_LIMIT whatever it is sent, and answers lists given no
 * `first` (whole records inside the fixed reads) at most that many rows.
 */
export const PAGE_SIZE_LIMIT = 10_000;
const firstSchema = z.number().int().min(1, 'first must be at least 1').max(PAGE_SIZE_LIMIT).nullish();

/** A ride's place in every ride list (by timestamp, then id), as `Ride.cursor` gives it. */
export const rideCursor = (timestamp: string, id: number): string => `${timestamp}/${id}`;
const RIDE_CURSOR = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)\/(\d{1,16})$/;
// Validated, not transformed: arguments are parsed again on the worker.
export const rideCursorSchema = z.string().regex(RIDE_CURSOR, 'after must be a Ride.cursor (timestamp/id) from a previous page');
export interface RideCursor {
  ts: string;
  id: number;
}
/** The keyset of a cursor that passed rideCursorSchema. */
export function rideCursorKey(cursor: string): RideCursor {
  const [, ts = '', id = '0'] = RIDE_CURSOR.exec(cursor) ?? [];
  return { ts, id: Number(id) };
}

/** Ride lists, by timestamp then id. */
export const rideListArgs = z.object({ first: firstSchema, after: rideCursorSchema.nullish() });
/** User lists, by username: `after` is the last username of the previous page. */
export const userListArgs = z.object({ first: firstSchema, after: usernameSchema.nullish() });
/** A ride's riders, in the order they joined: few per ride, so a bound and no cursor. */
export const riderListArgs = z.object({ first: firstSchema });

/** The arguments of each data field of GraphQL's Query type. */
export const queryFieldArgs = {
  areas: z.object({}),
  users: userListArgs,
  user: z.object({ username: usernameSchema }),
  rides: z.object({ source: areaIdSchema, destination: areaIdSchema, upcomingOnly: z.boolean().default(true), ...rideListArgs.shape }),
  ride: z.object({ id: rideIdSchema }),
  rideCount: z.object({}),
};
export type QueryFieldName = keyof typeof queryFieldArgs;

/** The arguments of list fields inside records: the only nested fields that take any. */
export const listFieldArgs = { ridesCreated: rideListArgs, ridesJoined: rideListArgs, riders: riderListArgs };
export type ListFieldName = keyof typeof listFieldArgs;
export const isListField = (name: string): name is ListFieldName => Object.prototype.hasOwnProperty.call(listFieldArgs, name);
/** The root fields that are pages: they take `first`, which the gateway fills in. */
export const PAGED_QUERY_FIELDS = ['users', 'rides'] as const;
