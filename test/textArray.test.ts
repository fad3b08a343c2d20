import { Client } from 'pg';
import { textArray } from '../worker/operations';
import { loadConfig } from '../platform';

/** textArray must mean to PostgreSQL exactly what pg's own array encoding means. */
const SAMPLES: Array<Array<string | null>> = [
  ['plain', '', 'NULL', 'null', ' spaced ', '{braces}', 'a,b', '"quoted"', 'back\\slash', 'end\\', '\\"', '\\\\n'],
  ['line\nbreak', 'tab\there', '\u0001'],
  ['emoji 🚗', 'lone \ud800 surrogate', 'ünïcödé', '\u2028'],
  [JSON.stringify({ id: 1, createdBy: { username: 'a"b' }, note: 'x\ny', path: 'c:\\d' })],
  [],
  // Absent values (a write without an Idempotency-Key fingerprint) are SQL NULL, not 'null'.
  [null, 'null', null],
];

test('textArray round-trips through PostgreSQL like pg encoding', async () => {
  const client = new Client({ connectionString: loadConfig().databaseUrl });
  await client.connect();
  try {
    for (const values of SAMPLES) {
      const { rows } = await client.query<{ ours: Array<string | null>; theirs: Array<string | null> }>('SELECT $1::text[] AS ours, $2::text[] AS theirs', [
        textArray(values),
        values,
      ]);
      expect(rows[0].ours).toEqual(values.map((v) => v?.replace(/\ud800/g, '\ufffd') ?? null));
      expect(rows[0].ours).toEqual(rows[0].theirs);
    }
  } finally {
    await client.end();
  }
});
