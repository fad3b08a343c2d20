import { z } from 'zod';
import { badInput, conflict, notFound } from './errors';
import type { AreaRecord, RideRecord, UserRecord, UserRidesRecord } from './records';

/**
 * The operation catalogue: every statement a worker may run. Client input only ever
 * reaches PostgreSQL as a bound parameter of one of these fixed statements.
 *
 * Reads run on slaves. Writes run in two steps: `resolve` on the master (checks rules,
 * fixes every generated value such as ids and timestamps) and `apply`, which the master
 * and every replica run with the same resolved arguments, so replay is deterministic.
 */

/** The subset of pg's client that operations need (a Pool or a PoolClient in a transaction). */
export interface Sql {
  query(text: string, values?: unknown[]): Promise<{ rows: Array<Record<string, unknown>>; rowCount: number | null }>;
}

export const usernameSchema = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'username must be 1-64 of A-Z a-z 0-9 _ . -');
/** What clients send: a SHA-1 digest, never stored as is. */
export const passwordSchema = z.string().regex(/^[0-9a-fA-F]{40}$/, 'password must be exactly 40 hex digits (SHA-1)');
const areaIdSchema = z.number().int().min(1).max(2_147_483_647);
const rideIdSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const isoTimeSchema = z.iso.datetime({ offset: true }).transform((s) => new Date(s).toISOString());

// Same text on every replica whatever its TimeZone setting.
const iso = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const userJson = (t: string) => `json_build_object('username', ${t}.username, 'createdAt', ${iso(`${t}.created_at`)})`;
const RIDE_JSON = `json_build_object(
    'id', r.id,
    'createdBy', ${userJson('c')},
    'timestamp', ${iso('r.ts')},
    'source', json_build_object('id', s.id, 'name', s.name),
    'destination', json_build_object('id', d.id, 'name', d.name),
    'riders', COALESCE((SELECT json_agg(${userJson('ru')} ORDER BY rr.joined_at, ru.username)
                          FROM ride_riders rr JOIN users ru ON ru.username = rr.username
                         WHERE rr.ride_id = r.id), '[]'::json))`;
const RIDE_FROM = `rides r
  JOIN users c ON c.username = r.created_by
  JOIN areas s ON s.id = r.source
  JOIN areas d ON d.id = r.destination`;

const docs = <T>(rows: Array<Record<string, unknown>>): T[] => rows.map((row) => row.doc as T);
const firstDoc = <T>(rows: Array<Record<string, unknown>>): T | null => (rows.length ? (rows[0].doc as T) : null);

export interface ReadOperation<A, R> {
  args: z.ZodType<A>;
  run(sql: Sql, args: A): Promise<R>;
}

const readOp = <A, R>(op: ReadOperation<A, R>) => op;

export const readOperations = {
  areas: readOp({
    args: z.object({}),
    run: async (sql) =>
      docs<AreaRecord>((await sql.query(`SELECT json_build_object('id', id, 'name', name) AS doc FROM areas ORDER BY id`)).rows),
  }),
  users: readOp({
    args: z.object({}),
    run: async (sql) => docs<UserRecord>((await sql.query(`SELECT ${userJson('u')} AS doc FROM users u ORDER BY u.username`)).rows),
  }),
  user: readOp({
    args: z.object({ username: usernameSchema }),
    run: async (sql, a) =>
      firstDoc<UserRecord>((await sql.query(`SELECT ${userJson('u')} AS doc FROM users u WHERE u.username = $1`, [a.username])).rows),
  }),
  userRides: readOp({
    args: z.object({ username: usernameSchema }),
    // One statement, so both lists come from the same snapshot.
    run: async (sql, a) =>
      firstDoc<UserRidesRecord>(
        (
          await sql.query(
            `SELECT json_build_object(
               'created', COALESCE((SELECT json_agg(${RIDE_JSON} ORDER BY r.ts, r.id) FROM ${RIDE_FROM} WHERE r.created_by = $1), '[]'::json),
               'joined',  COALESCE((SELECT json_agg(${RIDE_JSON} ORDER BY r.ts, r.id) FROM ${RIDE_FROM}
                                     WHERE r.id IN (SELECT ride_id FROM ride_riders WHERE username = $1)), '[]'::json)
             ) AS doc`,
            [a.username],
          )
        ).rows,
      ) ?? { created: [], joined: [] },
  }),
  rides: readOp({
    args: z.object({ source: areaIdSchema, destination: areaIdSchema, upcomingOnly: z.boolean().default(true) }),
    run: async (sql, a) =>
      docs<RideRecord>(
        (
          await sql.query(
            `SELECT ${RIDE_JSON} AS doc FROM ${RIDE_FROM}
              WHERE r.source = $1 AND r.destination = $2 AND (NOT $3::boolean OR r.ts > now())
              ORDER BY r.ts, r.id`,
            [a.source, a.destination, a.upcomingOnly],
          )
        ).rows,
      ),
  }),
  ride: readOp({
    args: z.object({ id: rideIdSchema }),
    run: async (sql, a) => firstDoc<RideRecord>((await sql.query(`SELECT ${RIDE_JSON} AS doc FROM ${RIDE_FROM} WHERE r.id = $1`, [a.id])).rows),
  }),
  rideCount: readOp({
    args: z.object({}),
    run: async (sql) => Number((await sql.query(`SELECT count(*) AS n FROM rides`)).rows[0].n),
  }),
};

export interface WriteOperation<A, Resolved, R> {
  args: z.ZodType<A>;
  /** Master only: enforce the rules against current state and fix generated values. */
  resolve(sql: Sql, args: A): Promise<Resolved>;
  /** Master and replicas: the deterministic effect. Must not read clocks or sequences. */
  apply(sql: Sql, resolved: Resolved): Promise<R>;
}

const writeOp = <A, Resolved, R>(op: WriteOperation<A, Resolved, R>) => op;

async function requireUser(sql: Sql, username: string): Promise<void> {
  const { rowCount } = await sql.query(`SELECT 1 FROM users WHERE username = $1`, [username]);
  if (!rowCount) throw notFound(`user ${username} does not exist`);
}

async function requireRide(sql: Sql, rideId: number): Promise<void> {
  const { rowCount } = await sql.query(`SELECT 1 FROM rides WHERE id = $1`, [rideId]);
  if (!rowCount) throw notFound(`ride ${rideId} does not exist`);
}

async function readRide(sql: Sql, id: number): Promise<RideRecord> {
  const ride = await readOperations.ride.run(sql, { id });
  if (!ride) throw notFound(`ride ${id} does not exist`);
  return ride;
}

export const writeOperations = {
  createUser: writeOp({
    // The gateway salts and hashes the client's SHA-1 digest; only the hash travels further.
    args: z.object({ username: usernameSchema, passwordHash: z.string().min(1).max(512) }),
    resolve: async (sql, a) => {
      const { rowCount } = await sql.query(`SELECT 1 FROM users WHERE username = $1`, [a.username]);
      if (rowCount) throw conflict(`username ${a.username} is taken`);
      return { ...a, createdAt: new Date().toISOString() };
    },
    apply: async (sql, r): Promise<UserRecord> => {
      await sql.query(`INSERT INTO users (username, password_hash, created_at) VALUES ($1, $2, $3)`, [r.username, r.passwordHash, r.createdAt]);
      return { username: r.username, createdAt: r.createdAt };
    },
  }),
  deleteUser: writeOp({
    args: z.object({ username: usernameSchema }),
    resolve: async (sql, a) => {
      await requireUser(sql, a.username);
      return a;
    },
    // Rides and memberships go with the user (ON DELETE CASCADE).
    apply: async (sql, r) => {
      await sql.query(`DELETE FROM users WHERE username = $1`, [r.username]);
      return true;
    },
  }),
  createRide: writeOp({
    args: z
      .object({ createdBy: usernameSchema, timestamp: isoTimeSchema, source: areaIdSchema, destination: areaIdSchema })
      .refine((a) => a.source !== a.destination, { message: 'source and destination must differ', path: ['destination'] }),
    resolve: async (sql, a) => {
      await requireUser(sql, a.createdBy);
      const areas = await sql.query(`SELECT id FROM areas WHERE id = ANY($1::int[])`, [[a.source, a.destination]]);
      if (areas.rowCount !== 2) throw badInput(`unknown area: source ${a.source} or destination ${a.destination}`);
      const { rows } = await sql.query(`SELECT nextval('rides_id_seq') AS id`);
      return { ...a, id: Number(rows[0].id) };
    },
    apply: async (sql, r) => {
      await sql.query(`INSERT INTO rides (id, created_by, ts, source, destination) VALUES ($1, $2, $3, $4, $5)`, [
        r.id,
        r.createdBy,
        r.timestamp,
        r.source,
        r.destination,
      ]);
      // Keep every replica's sequence in step, so a promoted replica never reuses an id.
      await sql.query(`SELECT setval('rides_id_seq', GREATEST($1::bigint, (SELECT last_value FROM rides_id_seq)))`, [r.id]);
      return readRide(sql, r.id);
    },
  }),
  joinRide: writeOp({
    args: z.object({ rideId: rideIdSchema, username: usernameSchema }),
    resolve: async (sql, a) => {
      await requireRide(sql, a.rideId);
      await requireUser(sql, a.username);
      return { ...a, joinedAt: new Date().toISOString() };
    },
    apply: async (sql, r) => {
      await sql.query(`INSERT INTO ride_riders (ride_id, username, joined_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [
        r.rideId,
        r.username,
        r.joinedAt,
      ]);
      return readRide(sql, r.rideId);
    },
  }),
  deleteRide: writeOp({
    args: z.object({ rideId: rideIdSchema }),
    resolve: async (sql, a) => {
      await requireRide(sql, a.rideId);
      return a;
    },
    apply: async (sql, r) => {
      await sql.query(`DELETE FROM rides WHERE id = $1`, [r.rideId]);
      return true;
    },
  }),
  clearDatabase: writeOp({
    args: z.object({}),
    resolve: async (_sql, a) => a,
    apply: async (sql) => {
      await sql.query(`DELETE FROM ride_riders`);
      await sql.query(`DELETE FROM rides`);
      await sql.query(`DELETE FROM users`);
      return true;
    },
  }),
};

export type ReadOpName = keyof typeof readOperations;
export type WriteOpName = keyof typeof writeOperations;
export type ReadArgs<N extends ReadOpName> = z.input<(typeof readOperations)[N]['args']>;
export type ReadResult<N extends ReadOpName> = Awaited<ReturnType<(typeof readOperations)[N]['run']>>;
export type WriteArgs<N extends WriteOpName> = z.input<(typeof writeOperations)[N]['args']>;
export type WriteResult<N extends WriteOpName> = Awaited<ReturnType<(typeof writeOperations)[N]['apply']>>;

export function isReadOp(name: string): name is ReadOpName {
  return Object.prototype.hasOwnProperty.call(readOperations, name);
}
export function isWriteOp(name: string): name is WriteOpName {
  return Object.prototype.hasOwnProperty.call(writeOperations, name);
}

/** Validate arguments against the catalogue; failures are BAD_USER_INPUT with the reasons. */
export function parseArgs<A>(schema: z.ZodType<A>, args: unknown): A {
  const parsed = schema.safeParse(args);
  if (!parsed.success) {
    throw badInput(parsed.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; '));
  }
  return parsed.data;
}
