import type { z } from 'zod';
import {
  badInput,
  DbaasError,
  isListField,
  listFieldArgs,
  MAX_KEYS_PER_OBJECT,
  MAX_SELECTION_DEPTH,
  PAGE_SIZE_LIMIT,
  queryFieldArgs,
  rideCursorKey,
  type FieldSelection,
  RECORD_SELECTIONS,
  type SelectionAnswer,
  type ListFieldName,
  type QueryFieldName,
} from '../schema';
import type { Sql } from './sql';

/**
 * The SQL for a client's selection (schema/selection.ts): one statement that builds the
 * whole `data` object as JSON text. One statement means one snapshot for every root
 * field, PostgreSQL computes only the fields asked for, and the text goes back to the
 * client without being parsed and re-encoded on the way. The fixed reads of the
 * catalogue (./operations) build their records with the same SQL (recordSql).
 */

type ObjectTypeName = 'Query' | 'Ride' | 'User' | 'Area';

/** Bind parameters and table aliases of one statement. */
class Statement {
  readonly values: unknown[] = [];
  private aliases = 0;

  param(value: unknown, type: string): string {
    this.values.push(value);
    return `$${this.values.length}::${type}`;
  }

  alias(prefix: string): string {
    return `${prefix}${++this.aliases}`;
  }
}

// Same text on every replica whatever its TimeZone setting; the same form as
// GraphQL's DateTimeISO (milliseconds, Z).
export const iso = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const list = (aggregate: string) => `COALESCE(${aggregate}, '[]'::json)`;

/**
 * SQL for one field of `type`, whose row is aliased `t` (or a bare username for User).
 * Scalars are made by `scalar` and marked so; every other field is an object (or a list
 * of them) and needs a selection.
 */
type FieldSql = ((s: Statement, t: string, f: FieldSelection, depth: number) => string) & { scalar?: true };

const scalar = (sql: (t: string) => string): FieldSql => Object.assign((_s: Statement, t: string) => sql(t), { scalar: true as const });

/** A page's row bound: what the gateway asked for, else the protocol's limit. */
// A literal when unset: whole records (recordSql) are spliced into fixed statements, no parameters.
const limit = (s: Statement, first: number | null | undefined) => (first == null ? String(PAGE_SIZE_LIMIT) : s.param(first, 'int'));

/** A field's arguments as `schema` accepts them, else BAD_USER_INPUT naming the field. */
function argsOf<S extends z.ZodType>(schema: S, f: FieldSelection): z.output<S> {
  const parsed = schema.safeParse(f.args ?? {});
  if (!parsed.success) throw badInput(`${f.key}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}
const listArgs = <N extends ListFieldName>(name: N, f: FieldSelection) => argsOf(listFieldArgs[name], f) as z.output<(typeof listFieldArgs)[N]>;

// Correlated lookups by primary key, so the cost follows the rows returned, not the
// size of the tables.
const rideFields: Record<string, FieldSql> = {
  id: scalar((t) => `${t}.id`),
  cursor: scalar((t) => `${iso(`${t}.ts`)} || '/' || ${t}.id`),
  timestamp: scalar((t) => iso(`${t}.ts`)),
  createdBy: (s, t, f, d) => userByName(s, `${t}.created_by`, f, d),
  source: (s, t, f, d) => areaById(s, `${t}.source`, f, d),
  destination: (s, t, f, d) => areaById(s, `${t}.destination`, f, d),
  riders: (s, t, f, d) => {
    const { first } = listArgs('riders', f);
    const rr = s.alias('rr');
    const page = `(SELECT * FROM ride_riders WHERE ride_id = ${t}.id ORDER BY joined_at, username LIMIT ${limit(s, first)}) ${rr}`;
    if (onlyUsername(f)) {
      return list(`(SELECT json_agg(${object(s, 'User', rr, f, d)} ORDER BY ${rr}.joined_at, ${rr}.username) FROM ${page})`);
    }
    const u = s.alias('u');
    return list(`(SELECT json_agg(${object(s, 'User', u, f, d)} ORDER BY ${rr}.joined_at, ${u}.username) FROM ${page} JOIN users ${u} ON ${u}.username = ${rr}.username)`);
  },
};

/** One page of rides matching `where`, by timestamp then id, from the keyset `page.after`. */
const ridesOf = (s: Statement, f: FieldSelection, d: number, where: (r: string) => string, page: { first?: number | null; after?: string | null }) => {
  const r = s.alias('r');
  const key = page.after ? rideCursorKey(page.after) : null;
  const after = key ? ` AND (${r}.ts, ${r}.id) > (${s.param(key.ts, 'timestamptz')}, ${s.param(key.id, 'bigint')})` : '';
  return list(
    `(SELECT json_agg(${object(s, 'Ride', r, f, d)} ORDER BY ${r}.ts, ${r}.id)
        FROM (SELECT * FROM rides ${r} WHERE ${where(r)}${after} ORDER BY ${r}.ts, ${r}.id LIMIT ${limit(s, page.first)}) ${r})`,
  );
};

const userFields: Record<string, FieldSql> = {
  username: scalar((t) => `${t}.username`),
  createdAt: scalar((t) => iso(`${t}.created_at`)),
  ridesCreated: (s, t, f, d) => ridesOf(s, f, d, (r) => `${r}.created_by = ${t}.username`, listArgs('ridesCreated', f)),
  ridesJoined: (s, t, f, d) => ridesOf(s, f, d, (r) => `${r}.id IN (SELECT ride_id FROM ride_riders WHERE username = ${t}.username)`, listArgs('ridesJoined', f)),
};

const areaFields: Record<string, FieldSql> = {
  id: scalar((t) => `${t}.id`),
  name: scalar((t) => `${t}.name`),
};

const rootArgs = <N extends QueryFieldName>(name: N, f: FieldSelection) => argsOf(queryFieldArgs[name], f) as z.output<(typeof queryFieldArgs)[N]>;

const queryFields: Record<string, FieldSql> = {
  areas: (s, _t, f, d) => {
    const a = s.alias('a');
    return list(`(SELECT json_agg(${object(s, 'Area', a, f, d)} ORDER BY ${a}.id) FROM areas ${a})`);
  },
  users: (s, _t, f, d) => {
    const a = rootArgs('users', f);
    const u = s.alias('u');
    const after = a.after ? ` WHERE ${u}.username > ${s.param(a.after, 'text')}` : '';
    return list(
      `(SELECT json_agg(${object(s, 'User', u, f, d)} ORDER BY ${u}.username)
          FROM (SELECT * FROM users ${u}${after} ORDER BY ${u}.username LIMIT ${limit(s, a.first)}) ${u})`,
    );
  },
  user: (s, _t, f, d) => {
    const { username } = rootArgs('user', f);
    const u = s.alias('u');
    return `(SELECT ${object(s, 'User', u, f, d)} FROM users ${u} WHERE ${u}.username = ${s.param(username, 'text')})`;
  },
  rides: (s, _t, f, d) => {
    const a = rootArgs('rides', f);
    return ridesOf(
      s,
      f,
      d,
      (r) =>
        // Upcoming and all are two statement shapes, not one with `(NOT $n OR ts > now())`:
        // that form's generic plan cannot bound the index scan by time and reads the
        // route's whole history (132 ms instead of 1 ms at 2M rides).
        `${r}.source = ${s.param(a.source, 'int')} AND ${r}.destination = ${s.param(a.destination, 'int')}` + (a.upcomingOnly ? ` AND ${r}.ts > now()` : ''),
      a,
    );
  },
  ride: (s, _t, f, d) => {
    const { id } = rootArgs('ride', f);
    const r = s.alias('r');
    return `(SELECT ${object(s, 'Ride', r, f, d)} FROM rides ${r} WHERE ${r}.id = ${s.param(id, 'bigint')})`;
  },
  rideCount: scalar(() => `(SELECT count(*) FROM rides)`),
};

const FIELDS: Record<ObjectTypeName, Record<string, FieldSql>> = { Query: queryFields, Ride: rideFields, User: userFields, Area: areaFields };

/** A user known only by name (a foreign key that guarantees the row) needs no lookup for `username`. */
const onlyUsername = (f: FieldSelection) => (f.select ?? []).every((x) => x.field === 'username' || x.field === '__typename');

function userByName(s: Statement, column: string, f: FieldSelection, d: number): string {
  if (onlyUsername(f)) return object(s, 'User', '', f, d, column);
  const u = s.alias('u');
  return `(SELECT ${object(s, 'User', u, f, d)} FROM users ${u} WHERE ${u}.username = ${column})`;
}

function areaById(s: Statement, column: string, f: FieldSelection, d: number): string {
  const a = s.alias('a');
  return `(SELECT ${object(s, 'Area', a, f, d)} FROM areas ${a} WHERE ${a}.id = ${column})`;
}

/**
 * `json_build_object` of `f`'s selection on a row of `type` aliased `t`. For a user known
 * only by name, `bareUsername` is the column that holds it.
 */
function object(s: Statement, type: ObjectTypeName, t: string, f: FieldSelection, depth: number, bareUsername?: string): string {
  if (depth > MAX_SELECTION_DEPTH) throw badInput(`selection deeper than ${MAX_SELECTION_DEPTH}`);
  const select = f.select ?? [];
  if (!select.length) throw badInput(`${f.key}: an object field needs a selection`);
  if (select.length > MAX_KEYS_PER_OBJECT) throw badInput(`${f.key}: more than ${MAX_KEYS_PER_OBJECT} fields`);
  const pairs = select.map((x) => `'${x.key}', ${fieldSql(s, type, t, x, depth + 1, bareUsername)}`);
  return `json_build_object(${pairs.join(', ')})`;
}

function fieldSql(s: Statement, type: ObjectTypeName, t: string, f: FieldSelection, depth: number, bareUsername?: string): string {
  if (f.field === '__typename') return `'${type}'`;
  if (bareUsername && f.field === 'username') return bareUsername;
  const build = Object.prototype.hasOwnProperty.call(FIELDS[type], f.field) ? FIELDS[type][f.field] : undefined;
  if (!build) throw badInput(`${type} has no field ${f.field}`);
  if (type !== 'Query' && !isListField(f.field) && f.args && Object.keys(f.args).length) throw badInput(`${type}.${f.field} takes no arguments`);
  if (!build.scalar !== Boolean(f.select)) throw badInput(`${type}.${f.field}: ${f.select ? 'a scalar has no selection' : 'needs a selection'}`);
  return build(s, t, f, depth);
}

/**
 * When time alone changes an answer: an upcoming-only `rides` page loses a ride once its
 * timestamp passes, so the earliest upcoming ride of each such route (no later than the
 * page's first row) bounds how long a copy of the answer stays true. Null: never.
 */
function expirySql(s: Statement, fields: FieldSelection[]): string {
  const bounds = fields
    .filter((f) => f.field === 'rides' && rootArgs('rides', f).upcomingOnly)
    .map((f) => {
      const a = rootArgs('rides', f);
      return `(SELECT min(ts) FROM rides WHERE source = ${s.param(a.source, 'int')} AND destination = ${s.param(a.destination, 'int')} AND ts > now())`;
    });
  if (!bounds.length) return 'NULL::float8';
  return `(extract(epoch FROM ${bounds.length > 1 ? `LEAST(${bounds.join(', ')})` : bounds[0]} - now()) * 1000)::float8`;
}

/**
 * The statement that answers selections of the Query type, each as one JSON text column
 * (`doc0`, `doc1`, …): several in one round trip for reads that would each take their own
 * (worker/slave.ts), all from one snapshot. `at` adds, from that snapshot, the replica's
 * applied seq (`seq`) and in how many ms each answer expires by time alone (`expires_in<i>`,
 * expirySql). With `maxBytes`, an answer longer than that comes back as NULL: PostgreSQL
 * still builds it, but the worker never holds it nor the gateway receives it.
 */
export function selectionsStatement(each: FieldSelection[][], at = false, maxBytes: number | null = null): { text: string; values: unknown[] } {
  const s = new Statement();
  const columns = each.map((fields, i) => {
    const json = `${object(s, 'Query', '', { key: 'data', field: 'data', select: fields }, 0)}::text`;
    // OFFSET 0 keeps the planner from folding `d` into the CASE, which built the answer twice.
    const doc =
      maxBytes === null
        ? `${json} AS doc${i}`
        : `(SELECT CASE WHEN octet_length(d) > ${s.param(maxBytes, 'bigint')} THEN NULL ELSE d END FROM (SELECT ${json} AS d OFFSET 0) AS a) AS doc${i}`;
    return at ? `${expirySql(s, fields)} AS expires_in${i}, ${doc}` : doc;
  });
  return { text: `SELECT ${at ? '(SELECT applied_seq FROM _dbaas_state) AS seq, ' : ''}${columns.join(', ')}`, values: s.values };
}

/** The statement for one selection. */
export const selectionStatement = (fields: FieldSelection[], at = false, maxBytes: number | null = null) => selectionsStatement([fields], at, maxBytes);

/** What a selection whose answer is over MAX_ANSWER_BYTES gets instead. */
export const answerTooLarge = (maxBytes: number) =>
  badInput(`the answer is larger than MAX_ANSWER_BYTES (${maxBytes} bytes of JSON): ask for smaller pages (first) or fewer fields`);

/** One selection's JSON text, or why it has none. */
const docOf = (row: Record<string, unknown>, i: number, maxBytes: number | null): string | DbaasError => {
  const doc = row[`doc${i}`] as string | null;
  return doc === null && maxBytes !== null ? answerTooLarge(maxBytes) : (doc as string);
};

/** Runs selections in one statement; each result is its `data` object as JSON text (or, past `maxBytes`, the error). */
export async function runSelections(sql: Sql, each: FieldSelection[][], maxBytes: number | null = null): Promise<Array<string | DbaasError>> {
  const { text, values } = selectionsStatement(each, false, maxBytes);
  const { rows } = await sql.query(text, values);
  return each.map((_, i) => docOf(rows[0], i, maxBytes));
}

/** Answers with the seq they were read at and how soon time alone changes each (ms, or null). */
export async function runSelectionsAt(sql: Sql, each: FieldSelection[][], maxBytes: number | null = null): Promise<Array<SelectionAnswer | DbaasError>> {
  const { text, values } = selectionsStatement(each, true, maxBytes);
  const { rows } = await sql.query(text, values);
  return each.map((_, i) => {
    const data = docOf(rows[0], i, maxBytes);
    if (data instanceof DbaasError) return data;
    const expires = rows[0][`expires_in${i}`] as number | null;
    return { seq: Number(rows[0].seq), data, expiresInMs: expires === null ? null : Number(expires) };
  });
}

const orThrow = <T>(result: T | DbaasError): T => {
  if (result instanceof DbaasError) throw result;
  return result;
};

export const runSelection = async (sql: Sql, fields: FieldSelection[], maxBytes: number | null = null): Promise<string> =>
  orThrow((await runSelections(sql, [fields], maxBytes))[0]);
export const runSelectionAt = async (sql: Sql, fields: FieldSelection[], maxBytes: number | null = null): Promise<SelectionAnswer> =>
  orThrow((await runSelectionsAt(sql, [fields], maxBytes))[0]);

/** The JSON of a whole record for a row aliased `t`, spliced into the master's own statements. */
export function recordSql(type: 'Ride' | 'User', t: string): string {
  return object(new Statement(), type, t, { key: type, field: type, select: RECORD_SELECTIONS[type] }, 1);
}

/**
 * One root field of the Query type, with `select` inside, as a value: the catalogue's fixed
 * reads are selections too, so every read's SQL (filters, orders, pages) is written once.
 */
export async function selectField<T>(sql: Sql, field: string, args: Record<string, unknown>, select: FieldSelection[]): Promise<T> {
  const data = JSON.parse(await runSelection(sql, [{ key: 'v', field, args, select }])) as { v: T };
  return data.v;
}
