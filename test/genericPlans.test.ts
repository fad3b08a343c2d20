import { randomBytes } from 'node:crypto';
import { Client, type Pool } from 'pg';
import pino from 'pino';
import { parseArgs, type FieldSelection } from '../schema';
import { type Sql } from '../worker/sql';
import { readOperation, readOperations } from '../worker/operations';
import { selectionStatement } from '../worker/selectionSql';
import { loadConfig } from '../platform';
import { openWorkerDatabase } from '../worker/database';

// PostgreSQL may switch a prepared statement to its generic plan (planned without the
// parameters' values) at any time. Every read statement must stay index-driven then.
const config = loadConfig({});
const database = `t_plans_${randomBytes(4).toString('hex')}`;
let pool: Pool;

beforeAll(async () => {
  pool = await openWorkerDatabase(config.databaseUrl, database, pino({ level: 'silent' }));
  await pool.query(`INSERT INTO users SELECT 'u' || i, 'x', now() FROM generate_series(1, 2000) i`);
  await pool.query(`INSERT INTO rides SELECT i, 'u' || (1 + i % 2000), now() + (i - 10000) * interval '1 minute', 1 + i % 40, 41 + i % 37 FROM generate_series(1, 20000) i`);
  await pool.query(`INSERT INTO ride_riders SELECT i, 'u' || (1 + (i * 7) % 2000), now() FROM generate_series(1, 20000, 3) i`);
  // One busy route, as a big city has: its pages must not cost more than a quiet one's.
  await pool.query(`INSERT INTO rides SELECT 100000 + i, 'u' || (1 + i % 2000), now() + (i - 10000) * interval '1 minute', 2, 43 FROM generate_series(1, 20000) i`);
  await pool.query('ANALYZE');
});
afterAll(async () => {
  await pool?.end();
  const admin = new Client({ connectionString: config.databaseUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await admin.end();
});

/** The statements a read operation sends, without running them. */
async function statementsOf(op: keyof typeof readOperations, args: unknown): Promise<Array<{ text: string; values: unknown[] }>> {
  const sent: Array<{ text: string; values: unknown[] }> = [];
  const recorder: Sql = {
    query: async (text, values = []) => {
      sent.push({ text, values });
      return { rows: [], rowCount: 0 };
    },
  };
  const entry = readOperation(op);
  // With the bound a replica runs selections under, so the plans checked are of what runs.
  await entry.run(recorder, parseArgs(entry.args, args), { maxAnswerBytes: config.maxAnswerBytes }).catch((err: Error) => {
    // Operations that parse the (empty) rows may fail here; the statement was recorded.
    if (!sent.length) throw err;
  });
  return sent;
}

/** The generic plan of a statement, as EXPLAIN shows it. */
async function genericPlan(text: string, values: unknown[]): Promise<string> {
  const client = await pool.connect();
  try {
    await client.query('SET plan_cache_mode = force_generic_plan');
    await client.query(`PREPARE s AS ${text}`);
    const args = values.map((v) => client.escapeLiteral(String(v))).join(', ');
    const { rows } = await client.query(`EXPLAIN EXECUTE s${args ? `(${args})` : ''}`);
    await client.query('DEALLOCATE s');
    return rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
  } finally {
    await client.query('RESET plan_cache_mode');
    client.release();
  }
}

const ride: FieldSelection[] = [
  { key: 'id', field: 'id' },
  { key: 'timestamp', field: 'timestamp' },
  { key: 'riders', field: 'riders', select: [{ key: 'username', field: 'username' }] },
];
const CASES: Array<[string, keyof typeof readOperations, unknown]> = [
  ['rides, upcoming', 'rides', { source: 2, destination: 43, upcomingOnly: true }],
  ['rides, all', 'rides', { source: 2, destination: 43, upcomingOnly: false }],
  ['ride', 'ride', { id: 77 }],
  ['user', 'user', { username: 'u7' }],
  ['userRides', 'userRides', { username: 'u7' }],
  ['selection: route, upcoming', 'selection', { fields: [{ key: 'rides', field: 'rides', args: { source: 2, destination: 43, upcomingOnly: true }, select: ride }] }],
  ['selection: route, all', 'selection', { fields: [{ key: 'rides', field: 'rides', args: { source: 2, destination: 43, upcomingOnly: false }, select: ride }] }],
  ['selection: ride', 'selection', { fields: [{ key: 'ride', field: 'ride', args: { id: 77 }, select: ride }] }],
  [
    'selection: a user and their rides',
    'selection',
    {
      fields: [
        {
          key: 'user',
          field: 'user',
          args: { username: 'u7' },
          select: [
            { key: 'ridesCreated', field: 'ridesCreated', select: ride },
            { key: 'ridesJoined', field: 'ridesJoined', select: ride },
          ],
        },
      ],
    },
  ],
  ['rides, a later page', 'rides', { source: 2, destination: 43, upcomingOnly: false, first: 50, after: '2030-01-01T00:00:00.000Z/77' }],
  ['users, first page', 'users', { first: 100 }],
  ['users, a later page', 'users', { first: 100, after: 'u500' }],
  [
    'selection: route, a later page',
    'selection',
    { fields: [{ key: 'rides', field: 'rides', args: { source: 2, destination: 43, upcomingOnly: false, first: 50, after: '2030-01-01T00:00:00.000Z/77' }, select: ride }] },
  ],
  [
    'selection: users, a later page',
    'selection',
    { fields: [{ key: 'users', field: 'users', args: { first: 100, after: 'u500' }, select: [{ key: 'username', field: 'username' }] }] },
  ],
  [
    "selection: a user's rides, a later page",
    'selection',
    {
      fields: [
        {
          key: 'user',
          field: 'user',
          args: { username: 'u7' },
          select: [{ key: 'ridesCreated', field: 'ridesCreated', args: { first: 10, after: '2030-01-01T00:00:00.000Z/77' }, select: ride }],
        },
      ],
    },
  ],
];
// Not here: `areas` (198 rows) and `rideCount` read whole tables by design.

describe('generic plans', () => {
  it('build a selection once when its answer is measured against MAX_ANSWER_BYTES', async () => {
    const fields = (CASES.find(([name]) => name === 'selection: a user and their rides')![2] as { fields: FieldSelection[] }).fields;
    const scans = async (maxBytes: number | null) => {
      const { text, values } = selectionStatement(fields, false, maxBytes);
      return (await genericPlan(text, values)).match(/Scan .*\bon (rides|ride_riders|users|areas)\b/g)?.length ?? 0;
    };
    const unbounded = await scans(null);
    expect(unbounded).toBeGreaterThan(0);
    expect(await scans(config.maxAnswerBytes)).toBe(unbounded);
  });

  it.each(CASES)('%s: every statement is index-driven', async (_name, op, args) => {
    const statements = await statementsOf(op, args);
    expect(statements.length).toBeGreaterThan(0);
    for (const { text, values } of statements) {
      const plan = await genericPlan(text, values);
      expect(plan).not.toMatch(/Seq Scan on (rides|ride_riders|users)\b/);
      // Upcoming rides: the time bound must bound the index scan, not filter the route.
      if (/ts > now\(\)/.test(text)) expect(plan).toMatch(/Index Cond: .*ts > now\(\)/);
      // A page comes from the index in order and stops at its LIMIT: no sort of every
      // matching ride (a cost that grows with the route or the table).
      if (/source = /.test(text)) expect(plan).not.toMatch(/Sort Key: (r\d*\.)?ts\b/);
      if (/FROM users u\d* (WHERE|ORDER)/.test(text)) expect(plan).not.toMatch(/Sort Key: (u\d*\.)?username\b/);
    }
  });
});
