import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import pino from 'pino';
import { AREAS } from '../schema';
import { MIGRATIONS } from '../worker/migrations';
import { loadConfig } from '../platform';
import { openWorkerDatabase } from '../worker/database';

const config = loadConfig({});
const database = `t_areas_${randomBytes(4).toString('hex')}`;
const urlOf = (db: string) => {
  const url = new URL(config.databaseUrl);
  url.pathname = `/${db}`;
  return url.toString();
};

async function withClient<T>(url: string, work: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

afterAll(async () => {
  await withClient(config.databaseUrl, (c) => c.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`));
});

describe('migration 004', () => {
  it('moves a database with the 12 invented areas to the original 198, keeping its rides', async () => {
    // A worker database as the first releases left it: migrations up to 003, with rides.
    await withClient(config.databaseUrl, (c) => c.query(`CREATE DATABASE "${database}"`));
    await withClient(urlOf(database), async (c) => {
      await c.query('CREATE TABLE _dbaas_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      for (const m of MIGRATIONS.filter((m) => m.name < '004')) {
        await c.query(m.sql);
        await c.query('INSERT INTO _dbaas_migrations (name) VALUES ($1)', [m.name]);
      }
      expect((await c.query<{ name: string }>('SELECT name FROM areas WHERE id = 2')).rows[0].name).toBe('Koramangala');
      await c.query(`INSERT INTO users VALUES ('asha', 'x', now())`);
      await c.query(`INSERT INTO rides VALUES (7, 'asha', now(), 2, 12), (9, 'asha', now(), 11, 1)`);
      await expect(c.query(`INSERT INTO rides VALUES (10, 'asha', now(), 2, 150)`)).rejects.toThrow(/rides_known_areas/);
    });

    const pool = await openWorkerDatabase(config.databaseUrl, database, pino({ level: 'silent' }));
    try {
      const areas = (await pool.query('SELECT id, name FROM areas ORDER BY id')).rows;
      expect(areas).toEqual(AREAS);
      const rides = (await pool.query('SELECT id, source, destination FROM rides ORDER BY id')).rows;
      expect(rides).toEqual([
        { id: '7', source: 2, destination: 12 },
        { id: '9', source: 11, destination: 1 },
      ]);
      await pool.query(`INSERT INTO rides VALUES (10, 'asha', now(), 2, 198)`);
      await expect(pool.query(`INSERT INTO rides VALUES (11, 'asha', now(), 2, 199)`)).rejects.toThrow(/rides_known_areas/);
    } finally {
      await pool.end();
    }
  });
});
