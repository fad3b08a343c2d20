import type { z } from 'zod';
import {
  badInput,
  conflict,
  DbaasError,
  isReadOp,
  isWriteOp,
  loggedDeleteRideSchema,
  loggedDeleteUserSchema,
  MAX_LOGGED_RIDES,
  notFound,
  readCatalogue,
  RECORD_SELECTIONS,
  rideCursor,
  writeCatalogue,
  type AreaRecord,
  type ReadOpName,
  type ReadParsedArgs,
  type ReadResult,
  type RideRecord,
  type UserRecord,
  type WriteOpName,
  type WriteParsedArgs,
  type WriteResult,
} from '../schema';
import { withFields } from '../platform';
import { iso, recordSql, runSelection, runSelectionAt, selectField } from './selectionSql';
import type { Sql } from './sql';

/**
 * The catalogue's operations (schema/catalogue.ts) as a worker runs them: every statement
 * a worker may run. Client input only ever reaches PostgreSQL as a bound parameter of one
 * of these fixed statements.
 *
 * Reads run on slaves. Writes run in two steps: `resolve` on the master (checks rules,
 * fixes every generated value such as ids and timestamps) and `apply`, which the master
 * and every replica run with the same resolved arguments, so replay is deterministic.
 */

// A user's whole record in the master's own statements, by the selections' SQL.
const userJson = (t: string) => recordSql('User', t);

export interface ReadOperation<A, R> {
  args: z.ZodType<A>;
  run(sql: Sql, args: A, ctx: ReadContext): Promise<R>;
}

/** What a replica knows when it answers a read. */
export interface ReadContext {
  /** MAX_ANSWER_BYTES: a client's selection answered with more JSON than this is BAD_USER_INPUT. */
  maxAnswerBytes: number;
}

/** For the worker's own reads (and the benchmark's baseline): no bound on what it asked for itself. */
export const UNBOUNDED_READ: ReadContext = { maxAnswerBytes: Number.MAX_SAFE_INTEGER };

/** The catalogue's argument schema for `name`, typed as what its operation runs with. */
const readArgs = <N extends ReadOpName>(name: N) => readCatalogue[name].args as unknown as z.ZodType<ReadParsedArgs<N>>;
const writeArgs = <N extends WriteOpName>(name: N) => writeCatalogue[name].args as unknown as z.ZodType<WriteParsedArgs<N>>;

/** The read `name` of the catalogue: its arguments, and `run`, which must return its declared result. */
const readOp = <N extends ReadOpName>(
  name: N,
  op: { run: (sql: Sql, args: ReadParsedArgs<N>, ctx: ReadContext) => Promise<ReadResult<N>> },
): ReadOperation<ReadParsedArgs<N>, ReadResult<N>> => ({
  args: readArgs(name),
  run: op.run,
});

export const readOperations = {
  areas: readOp('areas', { run: (sql) => selectField<AreaRecord[]>(sql, 'areas', {}, RECORD_SELECTIONS.Area) }),
  users: readOp('users', { run: (sql, a) => selectField<UserRecord[]>(sql, 'users', a, RECORD_SELECTIONS.User) }),
  user: readOp('user', { run: (sql, a) => selectField<UserRecord | null>(sql, 'user', a, RECORD_SELECTIONS.User) }),
  userRides: readOp('userRides', {
    // One statement, so both lists come from the same snapshot. Bounded by the protocol's
    // page limit; GraphQL pages within it (UserFieldsResolver).
    run: async (sql, a) => {
      const user = await selectField<{ created: RideRecord[]; joined: RideRecord[] } | null>(sql, 'user', a, [
        { key: 'created', field: 'ridesCreated', select: RECORD_SELECTIONS.Ride },
        { key: 'joined', field: 'ridesJoined', select: RECORD_SELECTIONS.Ride },
      ]);
      return user ?? { created: [], joined: [] };
    },
  }),
  rides: readOp('rides', { run: (sql, a) => selectField<RideRecord[]>(sql, 'rides', a, RECORD_SELECTIONS.Ride) }),
  ride: readOp('ride', { run: (sql, a) => selectField<RideRecord | null>(sql, 'ride', a, RECORD_SELECTIONS.Ride) }),
  // A client chooses what a selection holds, so its size is bounded here; the catalogue's
  // own reads above have fixed shapes within the protocol's page limit.
  selection: readOp('selection', {
    run: (sql, a, ctx) => runSelection(sql, a.fields, ctx.maxAnswerBytes),
  }),
  selectionAt: readOp('selectionAt', {
    run: (sql, a, ctx) => runSelectionAt(sql, a.fields, ctx.maxAnswerBytes),
  }),
  rideCount: readOp('rideCount', {
    run: async (sql) => Number((await sql.query(`SELECT count(*) AS n FROM rides`)).rows[0].n),
  }),
} satisfies Record<ReadOpName, unknown>;

/** What the master knows when it resolves a write. */
export interface WriteContext {
  /** The log position this write will take; also the id of anything it creates. */
  seq: number;
  /** MAX_RIDERS_PER_RIDE. */
  maxRidersPerRide: number;
}

/** What the master decided: the arguments to log, and the result when already known. */
export interface Resolution<Resolved, R> {
  resolved: Resolved;
  result?: R;
}

export interface WriteOperation<A, Resolved, R> {
  args: z.ZodType<A>;
  /**
   * Master only, read-only: enforce the rules against current state and fix every
   * generated value (ids, timestamps). Throws a DbaasError when a rule fails.
   */
  resolve(sql: Sql, args: A, ctx: WriteContext): Promise<Resolution<Resolved, R>>;
  /**
   * Master only, for operations whose writes never affect each other's rules: resolves
   * consecutive writes in one round trip. Successful ones take seqs firstSeq, firstSeq+1, …
   * in order; a failed one is its DbaasError and takes no seq.
   */
  resolveMany?(sql: Sql, args: A[], firstSeq: number): Promise<Array<Resolution<Resolved, R> | DbaasError>>;
  /** Master and replicas: the deterministic effect. Never reads clocks or sequences. */
  apply(sql: Sql, resolved: Resolved): Promise<void>;
  /**
   * Replicas catching up: the effect of consecutive entries of this operation in one
   * statement, equivalent to applying them one by one in order.
   */
  applyMany?(sql: Sql, resolved: Resolved[]): Promise<void>;
  /**
   * Master only, after apply, when resolve could not know it: what the client gets back
   * (stored in the log, so a retried write returns the same).
   */
  result?(sql: Sql, resolved: Resolved): Promise<R>;
}

/** The write `name` of the catalogue: its arguments, and steps that end in its declared result. */
const writeOp = <N extends WriteOpName, Resolved>(
  name: N,
  op: Omit<WriteOperation<WriteParsedArgs<N>, Resolved, WriteResult<N>>, 'args'>,
): WriteOperation<WriteParsedArgs<N>, Resolved, WriteResult<N>> => ({ args: writeArgs(name), ...op });

async function readRide(sql: Sql, id: number): Promise<RideRecord> {
  const ride = await readOperations.ride.run(sql, { id }, UNBOUNDED_READ);
  if (!ride) throw notFound(`ride ${id} does not exist`);
  return ride;
}

const column = <T, K extends keyof T>(rows: T[], key: K) => rows.map((r) => r[key]);

/**
 * A text[] parameter as one array literal. pg encodes arrays element by element with two
 * regular-expression replaces each, the largest cost in a replica's catch-up profile.
 * JSON's string escaping is the array literal's (a backslash before " and \) for strings
 * without control characters or lone surrogates; JSON escapes those as \n, \u…, so any
 * other backslash sequence sends the values to pg's encoder instead.
 */
export function textArray(values: readonly (string | null)[]): string | readonly (string | null)[] {
  const json = JSON.stringify(values);
  return /\\[^"\\]/.test(json) ? values : `{${json.slice(1, -1)}}`;
}

interface NewRide {
  createdBy: string;
  timestamp: string;
  source: number;
  destination: number;
}

/**
 * Rules and generated values of createRide, for many rides in one round trip: the
 * creators and areas as the new rides will show them. A ride's id is its log seq:
 * unique, increasing, the same on every replica, never reused, and with no sequence to
 * keep in step across failovers.
 */
async function resolveRides(sql: Sql, rides: NewRide[], firstSeq: number): Promise<Array<Resolution<NewRide & { id: number }, RideRecord> | DbaasError>> {
  const { rows } = await sql.query(
    `SELECT (SELECT coalesce(json_object_agg(u.username, ${userJson('u')}), '{}') FROM users u WHERE u.username = ANY($1::text[])) AS users,
            (SELECT coalesce(json_object_agg(a.id, json_build_object('id', a.id, 'name', a.name)), '{}') FROM areas a WHERE a.id = ANY($2::int[])) AS areas`,
    [rides.map((r) => r.createdBy), rides.flatMap((r) => [r.source, r.destination])],
  );
  const users = rows[0].users as Record<string, UserRecord>;
  const areas = rows[0].areas as Record<string, AreaRecord>;
  let seq = firstSeq;
  return rides.map((a) => {
    const creator = users[a.createdBy];
    if (!creator) return notFound(`user ${a.createdBy} does not exist`);
    const source = areas[a.source];
    const destination = areas[a.destination];
    if (!source || !destination) return badInput(`unknown area: source ${a.source} or destination ${a.destination}`);
    const id = seq++;
    return { resolved: withFields(a, { id }), result: { id, cursor: rideCursor(a.timestamp, id), createdBy: creator, timestamp: a.timestamp, source, destination, riders: [] } };
  });
}

export const writeOperations = {
  createUser: writeOp('createUser', {
    // The gateway salts and hashes the client's SHA-1 digest; only the hash travels further.
    resolve: async (sql, a) => {
      const { rowCount } = await sql.query(`SELECT 1 FROM users WHERE username = $1`, [a.username]);
      if (rowCount) throw conflict(`username ${a.username} is taken`);
      const createdAt = new Date().toISOString();
      return { resolved: withFields(a, { createdAt }), result: { username: a.username, createdAt } satisfies UserRecord };
    },
    apply: async (sql, r) => {
      await sql.query(`INSERT INTO users (username, password_hash, created_at) VALUES ($1, $2, $3)`, [r.username, r.passwordHash, r.createdAt]);
    },
    applyMany: async (sql, rs) => {
      await sql.query(`INSERT INTO users (username, password_hash, created_at) SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])`, [
        textArray(column(rs, 'username')),
        textArray(column(rs, 'passwordHash')),
        textArray(column(rs, 'createdAt')),
      ]);
    },
  }),
  deleteUser: writeOp('deleteUser', {
    // The rides that go with the user, for the log's readers (schema/live.ts).
    resolve: async (sql, a) => {
      const user = await sql.query(`SELECT ${iso('created_at')} AS created_at FROM users WHERE username = $1`, [a.username]);
      if (!user.rowCount) throw notFound(`user ${a.username} does not exist`);
      // A row per ride and rider (one for a ride without riders), bounded in all, so that
      // one entry stays small however many riders the rides had.
      const { rows } = await sql.query(
        `SELECT r.id, r.source, r.destination, rr.username AS rider
           FROM rides r LEFT JOIN ride_riders rr ON rr.ride_id = r.id
          WHERE r.created_by = $1 ORDER BY r.id, rr.username LIMIT $2`,
        [a.username, MAX_LOGGED_RIDES + 1],
      );
      // Then the rides of others the user joined, within what the bound leaves.
      const room = MAX_LOGGED_RIDES - Math.min(rows.length, MAX_LOGGED_RIDES);
      const joined = await sql.query(
        `SELECT r.id, r.source, r.destination, r.created_by
           FROM ride_riders rr JOIN rides r ON r.id = rr.ride_id
          WHERE rr.username = $1 AND r.created_by <> $1 ORDER BY r.id LIMIT $2`,
        [a.username, room + 1],
      );
      const more = rows.length > MAX_LOGGED_RIDES || joined.rows.length > room;
      const byId = new Map<number, z.infer<typeof loggedDeleteUserSchema>['rides'][number]>();
      for (const row of more ? [] : rows) {
        const id = Number(row.id);
        let ride = byId.get(id);
        if (!ride) byId.set(id, (ride = { id, source: row.source as number, destination: row.destination as number, riders: [] }));
        if (row.rider !== null) ride.riders.push(row.rider as string);
      }
      const leftRides = (more ? [] : joined.rows).map((r) => ({
        id: Number(r.id),
        source: r.source as number,
        destination: r.destination as number,
        createdBy: r.created_by as string,
      }));
      // Their other riders (their userRides hear of it, the read cache drops their joined
      // rides) in what room is left: without them the cache empties itself and those
      // riders miss the RIDE_LEFT, while past the bound every live subscription would end.
      const coRoom = room - leftRides.length;
      const coRiders = leftRides.length
        ? await sql.query(`SELECT ride_id, username FROM ride_riders WHERE ride_id = ANY($1::bigint[]) AND username <> $2 ORDER BY ride_id, username LIMIT $3`, [
            leftRides.map((r) => r.id),
            a.username,
            coRoom + 1,
          ])
        : { rows: [] };
      const ridersOf = new Map<number, string[]>();
      for (const row of coRiders.rows) {
        const id = Number(row.ride_id);
        const riders = ridersOf.get(id) ?? [];
        riders.push(row.username as string);
        ridersOf.set(id, riders);
      }
      const named = coRiders.rows.length <= coRoom;
      const left = {
        rider: { username: a.username, createdAt: user.rows[0].created_at as string },
        rides: leftRides.map((r) => (named ? { ...r, riders: ridersOf.get(r.id) ?? [] } : r)),
      };
      const resolved = { username: a.username, rides: [...byId.values()], left, more } satisfies z.input<typeof loggedDeleteUserSchema>;
      return { resolved, result: true };
    },
    // Rides and memberships go with the user (ON DELETE CASCADE).
    apply: async (sql, r) => {
      await sql.query(`DELETE FROM users WHERE username = $1`, [r.username]);
    },
    applyMany: async (sql, rs) => {
      await sql.query(`DELETE FROM users WHERE username = ANY($1::text[])`, [column(rs, 'username')]);
    },
  }),
  createRide: writeOp('createRide', {
    resolve: async (sql, a, ctx) => {
      const [resolution] = await resolveRides(sql, [a], ctx.seq);
      if (resolution instanceof DbaasError) throw resolution;
      return resolution;
    },
    resolveMany: resolveRides,
    apply: async (sql, r) => {
      await sql.query(`INSERT INTO rides (id, created_by, ts, source, destination) VALUES ($1, $2, $3, $4, $5)`, [r.id, r.createdBy, r.timestamp, r.source, r.destination]);
    },
    applyMany: async (sql, rs) => {
      await sql.query(
        `INSERT INTO rides (id, created_by, ts, source, destination)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::int[], $5::int[])`,
        [column(rs, 'id'), textArray(column(rs, 'createdBy')), textArray(column(rs, 'timestamp')), column(rs, 'source'), column(rs, 'destination')],
      );
    },
  }),
  joinRide: writeOp('joinRide', {
    // The ride's size is bounded: every join logs the ride with all its riders, and an
    // unbounded list would let one client make each join's entry, and every replica's and
    // gateway's copy of it, as large as it likes (docs/operations.md, MAX_RIDERS_PER_RIDE).
    // A ride already over the bound (from before it, or a lowered one) takes no join at
    // all, its own riders' included, or each of those would log it whole. Checked one join
    // at a time, after the batch's earlier ones applied; a resolveMany would bypass it.
    resolve: async (sql, a, ctx) => {
      const { rows } = await sql.query(
        `SELECT EXISTS (SELECT 1 FROM rides WHERE id = $1) AS ride, EXISTS (SELECT 1 FROM users WHERE username = $2) AS rider,
                EXISTS (SELECT 1 FROM ride_riders WHERE ride_id = $1 AND username = $2) AS joined,
                (SELECT count(*) FROM (SELECT 1 FROM ride_riders WHERE ride_id = $1 LIMIT $3) AS r)::int AS riders`,
        [a.rideId, a.username, ctx.maxRidersPerRide + 1],
      );
      if (!rows[0].ride) throw notFound(`ride ${a.rideId} does not exist`);
      if (!rows[0].rider) throw notFound(`user ${a.username} does not exist`);
      const riders = rows[0].riders as number;
      if (riders > ctx.maxRidersPerRide) throw conflict(`ride ${a.rideId} has more riders than MAX_RIDERS_PER_RIDE (${ctx.maxRidersPerRide}) and takes no joins`);
      if (!rows[0].joined && riders === ctx.maxRidersPerRide) throw conflict(`ride ${a.rideId} is full: it has MAX_RIDERS_PER_RIDE (${ctx.maxRidersPerRide}) riders`);
      return { resolved: withFields(a, { joinedAt: new Date().toISOString() }) };
    },
    apply: async (sql, r) => {
      await sql.query(`INSERT INTO ride_riders (ride_id, username, joined_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [r.rideId, r.username, r.joinedAt]);
    },
    // Rows are inserted in order, so of two joins of the same pair the first one stays.
    applyMany: async (sql, rs) => {
      await sql.query(
        `INSERT INTO ride_riders (ride_id, username, joined_at)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) ON CONFLICT DO NOTHING`,
        [column(rs, 'rideId'), textArray(column(rs, 'username')), textArray(column(rs, 'joinedAt'))],
      );
    },
    result: (sql, r) => readRide(sql, r.rideId),
  }),
  deleteRide: writeOp('deleteRide', {
    // The route goes into the log for its readers: once applied, the ride is gone.
    resolve: async (sql, a) => {
      const { rows } = await sql.query(
        `SELECT source, destination, created_by,
                ARRAY(SELECT username FROM ride_riders WHERE ride_id = $1 ORDER BY username LIMIT $2) AS riders
           FROM rides WHERE id = $1`,
        [a.rideId, MAX_LOGGED_RIDES + 1],
      );
      if (!rows.length) throw notFound(`ride ${a.rideId} does not exist`);
      const riders = rows[0].riders as string[];
      const resolved = {
        rideId: a.rideId,
        source: rows[0].source as number,
        destination: rows[0].destination as number,
        createdBy: rows[0].created_by as string,
        riders: riders.slice(0, MAX_LOGGED_RIDES),
        more: riders.length > MAX_LOGGED_RIDES,
      } satisfies z.input<typeof loggedDeleteRideSchema>;
      return { resolved, result: true };
    },
    apply: async (sql, r) => {
      await sql.query(`DELETE FROM rides WHERE id = $1`, [r.rideId]);
    },
    applyMany: async (sql, rs) => {
      await sql.query(`DELETE FROM rides WHERE id = ANY($1::bigint[])`, [column(rs, 'rideId')]);
    },
  }),
  clearDatabase: writeOp('clearDatabase', {
    resolve: async (_sql, a) => ({ resolved: a, result: true }),
    apply: async (sql) => {
      await sql.query(`DELETE FROM ride_riders`);
      await sql.query(`DELETE FROM rides`);
      await sql.query(`DELETE FROM users`);
    },
  }),
} satisfies Record<WriteOpName, unknown>;

/** A catalogue read as a worker runs it, whatever its argument and result types. */
export type AnyReadOperation = ReadOperation<unknown, unknown>;

export function readOperation(name: string): AnyReadOperation {
  if (!isReadOp(name)) throw badInput(`unknown read operation ${name}`);
  return readOperations[name];
}

/** A catalogue write as the worker drives it, whatever its argument types. */
export type AnyWriteOperation = WriteOperation<unknown, unknown, unknown>;

export function writeOperation(name: string): AnyWriteOperation {
  if (!isWriteOp(name)) throw badInput(`unknown write operation ${name}`);
  return writeOperations[name];
}
