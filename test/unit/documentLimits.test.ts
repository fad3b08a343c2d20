import fs from 'node:fs';
import path from 'node:path';
import { buildSchema, parse, specifiedRules, validate } from 'graphql';
import { queryLimits } from '../../gateway/graphql/limits';

// No services: the rules against the schema as printed (schema.graphql).
const schema = buildSchema(fs.readFileSync(path.join(__dirname, '..', '..', 'schema.graphql'), 'utf8'));
const rules = [...specifiedRules, ...queryLimits({ maxDepth: 8, maxAliases: 30, maxCost: 5000, listFactor: 10 })];
const errorsOf = (query: string) => validate(schema, parse(query), rules).map((e) => e.message);

/** `query Fan { ...F0 }`, each fragment spreading the next twice: 2^levels paths. */
function fragmentFan(levels: number): string {
  const fragments = Array.from({ length: levels }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`);
  return `query Fan { ...F0 } ${fragments.join(' ')} fragment F${levels} on Query { rideCount }`;
}

describe('document limits', () => {
  it('accept the everyday documents', () => {
    expect(errorsOf('{ rides(source: 2, destination: 4) { id timestamp createdBy { username } riders { username } source { name } destination { name } } }')).toEqual([]);
    expect(errorsOf('query($id: Int!) { ride(id: $id) { riders { username ridesJoined { id } } createdBy { ridesCreated { id } } } }')).toEqual([]);
    expect(
      errorsOf('{ cluster { master { id } slaves { id appliedSeq } } workers { id } __schema { types { name fields { name type { name ofType { name ofType { name } } } } } } }'),
    ).toEqual([]);
  });

  it('measure a fan of fragments once per fragment, and refuse it by cost', () => {
    // 2^40 paths: a walk of every path would not finish within the test's timeout.
    const errors = errorsOf(fragmentFan(40));
    expect(errors).toEqual([expect.stringMatching(/query cost \d+ exceeds the limit of 5000/)]);
    expect(errorsOf(fragmentFan(10))).toEqual([]);
  });

  it('refuse nesting past the depth limit, also through fragments', () => {
    const deep = '{ users { ridesCreated { riders { ridesJoined { riders { ridesJoined { riders { ridesJoined { createdBy { username } } } } } } } } } }';
    expect(errorsOf(deep)).toContain('query depth 9 exceeds the limit of 8');
    const nine =
      'query Q { users { ...A } } fragment A on User { ridesCreated { riders { ridesJoined { riders { ridesJoined { riders { ridesJoined { ...B } } } } } } } } fragment B on Ride { createdBy { username } }';
    expect(errorsOf(nine)).toContain('query depth 9 exceeds the limit of 8');
    const viaFragments = 'query Q { users { ...C } } fragment C on User { ridesCreated { ...D } } fragment D on Ride { riders { ...C } }';
    expect(errorsOf(viaFragments).join()).toMatch(/within itself/); // graphql-js' own rule; ours must not loop
  });

  it('refuse lists of lists that would make the database produce too much', () => {
    const wide = '{ users { ridesCreated { riders { ridesJoined { riders { username } } } } } }';
    expect(errorsOf(wide)).toEqual([expect.stringMatching(/query cost 1111\d+ exceeds/)]);
  });

  it('refuse more aliases than allowed', () => {
    const aliases = Array.from({ length: 31 }, (_, i) => `a${i}: rideCount`).join(' ');
    expect(errorsOf(`{ ${aliases} }`)).toEqual(['more than 30 aliased fields']);
  });
});
