import { z } from 'zod';
import { badInput } from './errors';
import type { AreaRecord, RideRecord, UserRecord, UserRidesRecord } from './records';
import { selectionArgsSchema, type SelectionAnswer } from './selection';
import { areaIdSchema, isoTimeSchema, queryFieldArgs, rideIdSchema, usernameSchema } from './values';

/**
 * The operation catalogue: every read and write the gateway may ask of a worker, by name,
 * with its arguments (validated by the worker, and by the gateway but for the selections it
 * plans itself: gateway/service.ts) and its result's type. Workers implement
 * exactly these (worker/operations.ts: the compiler refuses a missing, extra or
 * differently typed one); the gateway derives its typed RPCs, its counted fields and its
 * compiled mutations from these names. Adding an operation starts here.
 */

/** An operation's arguments, and its result as a type only (nothing at run time). */
export interface Declared<A extends z.ZodType, R> {
  args: A;
  readonly result?: (type: R) => void;
}
const returning =
  <R>() =>
  <A extends z.ZodType>(args: A): Declared<A, R> => ({ args });

/** Reads: slaves answer them (the master too when no slave can). */
export const readCatalogue = {
  areas: returning<AreaRecord[]>()(z.object({})),
  users: returning<UserRecord[]>()(queryFieldArgs.users),
  user: returning<UserRecord | null>()(queryFieldArgs.user),
  /** A user's rides, created and joined, from one snapshot. */
  userRides: returning<UserRidesRecord>()(z.object({ username: usernameSchema })),
  rides: returning<RideRecord[]>()(queryFieldArgs.rides),
  ride: returning<RideRecord | null>()(queryFieldArgs.ride),
  /** A client's whole GraphQL selection in one statement; the result is the `data` object as JSON text. */
  selection: returning<string>()(selectionArgsSchema),
  /** The same, with the log position it was read at (one statement, one snapshot): what live subscriptions and the read cache start from. */
  selectionAt: returning<SelectionAnswer>()(selectionArgsSchema),
  rideCount: returning<number>()(z.object({})),
};

/** Writes: the master resolves and applies them, and logs them for the replicas. */
export const writeCatalogue = {
  /** The gateway salts and hashes the client's SHA-1 digest; only the hash travels further. */
  createUser: returning<UserRecord>()(z.object({ username: usernameSchema, passwordHash: z.string().min(1).max(512) })),
  /** Rides and memberships go with the user. */
  deleteUser: returning<boolean>()(z.object({ username: usernameSchema })),
  createRide: returning<RideRecord>()(
    z
      .object({ createdBy: usernameSchema, timestamp: isoTimeSchema, source: areaIdSchema, destination: areaIdSchema })
      .refine((a) => a.source !== a.destination, { message: 'source and destination must differ', path: ['destination'] }),
  ),
  joinRide: returning<RideRecord>()(z.object({ rideId: rideIdSchema, username: usernameSchema })),
  deleteRide: returning<boolean>()(z.object({ rideId: rideIdSchema })),
  clearDatabase: returning<boolean>()(z.object({})),
};

type ResultOf<D> = D extends Declared<z.ZodType, infer R> ? R : never;

export type ReadOpName = keyof typeof readCatalogue;
export type WriteOpName = keyof typeof writeCatalogue;
/** As the gateway sends them (before defaults and coercion). */
export type ReadArgs<N extends ReadOpName> = z.input<(typeof readCatalogue)[N]['args']>;
export type WriteArgs<N extends WriteOpName> = z.input<(typeof writeCatalogue)[N]['args']>;
/** As a worker runs them (validated). */
export type ReadParsedArgs<N extends ReadOpName> = z.output<(typeof readCatalogue)[N]['args']>;
export type WriteParsedArgs<N extends WriteOpName> = z.output<(typeof writeCatalogue)[N]['args']>;
export type ReadResult<N extends ReadOpName> = ResultOf<(typeof readCatalogue)[N]>;
export type WriteResult<N extends WriteOpName> = ResultOf<(typeof writeCatalogue)[N]>;

export function isReadOp(name: string): name is ReadOpName {
  return Object.prototype.hasOwnProperty.call(readCatalogue, name);
}
export function isWriteOp(name: string): name is WriteOpName {
  return Object.prototype.hasOwnProperty.call(writeCatalogue, name);
}

/** Validate arguments against the catalogue; failures are BAD_USER_INPUT with the reasons. */
export function parseArgs<A>(schema: z.ZodType<A>, args: unknown): A {
  const parsed = schema.safeParse(args);
  if (!parsed.success) {
    throw badInput(parsed.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; '));
  }
  return parsed.data;
}

/** The catalogue's rules for a read's or a write's arguments, checked; BAD_USER_INPUT when broken. */
export function checkArgs(kind: 'read' | 'write', op: ReadOpName | WriteOpName, args: unknown): void {
  const declared: { args: z.ZodType } | undefined = kind === 'read' ? readCatalogue[op as ReadOpName] : writeCatalogue[op as WriteOpName];
  if (!declared) throw badInput(`unknown ${kind} operation ${op}`);
  parseArgs(declared.args, args);
}
