import fs from 'node:fs';
import path from 'node:path';
import { AREAS, areaIdSchema, knownAreaSql, queryFieldArgs } from '../../schema';

// The original RideShare file, kept verbatim in the repository.
const CSV = path.join(__dirname, '..', '..', 'schema', 'data', 'AreaNameEnum.csv');

describe('areas', () => {
  it('are exactly the 198 areas of the original data, ids and names', () => {
    const [header, ...lines] = fs.readFileSync(CSV, 'utf8').trim().split(/\r?\n/);
    expect(header).toBe('Area No,Area Name');
    const original = lines.map((line) => {
      const comma = line.indexOf(',');
      return { id: Number(line.slice(0, comma)), name: line.slice(comma + 1) };
    });
    expect(original).toHaveLength(198);
    expect(AREAS).toEqual(original);
    expect(AREAS[0]).toEqual({ id: 1, name: 'Kempegowda Ward' });
    expect(AREAS[197]).toEqual({ id: 198, name: 'Hemmigepura' });
  });

  it('are what argument validation and the rides check accept, and nothing else', () => {
    for (const id of [1, 2, 100, 198]) expect(areaIdSchema.safeParse(id).success).toBe(true);
    for (const id of [0, -1, 199, 999, 2.5]) expect(areaIdSchema.safeParse(id).success).toBe(false);
    const unknown = queryFieldArgs.rides.safeParse({ source: 999, destination: 1 });
    expect(unknown.success).toBe(false);
    expect(unknown.error?.issues[0].message).toMatch(/unknown area 999/);
    expect(knownAreaSql('source')).toBe('source BETWEEN 1 AND 198');
  });
});
