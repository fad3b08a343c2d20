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

/** The arguments of each data field of GraphQL's Query type. */
export const queryFieldArgs = {
  areas: z.object({}),
  users: z.object({}),
  user: z.object({ username: usernameSchema }),
  rides: z.object({ source: areaIdSchema, destination: areaIdSchema, upcomingOnly: z.boolean().default(true) }),
  ride: z.object({ id: rideIdSchema }),
  rideCount: z.object({}),
};
export type QueryFieldName = keyof typeof queryFieldArgs;
