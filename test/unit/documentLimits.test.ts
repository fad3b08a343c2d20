import fs from 'node:fs';
import path from 'node:path';
import { buildSchema, parse, specifiedRules, validate } from 'graphql';
import { queryLimits } from '../../gateway/graphql/limits';

// No services: the rules against the schema as printed (schema.graphql).
const schema = buildSchema(fs.readFileSync(path.join(__dirname, '..', '..', 'schema.graphql'), 'utf8'));
const limits = { maxDepth: 8, maxAliases: 30, maxCost: 5000, listFactor: 10, maxValues: 500_000, pageSizeDefault: 100, pageSizeMax: 1000, listBounds: { 'Ride.riders': 100 } };
const rules = [...specifiedRules, ...queryLimits(limits)];
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
    expect(errors).toEqual([expect.stringMatching(/query cost \d+ exceeds the limit of 5000/), expect.stringMatching(/the answer could hold [\d,]+ values/)]);
    expect(errorsOf(fragmentFan(10))).toEqual([]);
  });

  it('count every list at the page size it asks for: pages nested in pages multiply, and are refused past the answer limit', () => {
    // A page of each user's rides with a page of each rider's own rides: 1,000 × 100 × 20
    // ids, ~44 MB of answer, though its estimated cost (1,112) passes.
    const nested = '{ user(username: "x") { ridesCreated(first: 1000) { riders(first: 100) { ridesCreated(first: 20) { id } } } } }';
    expect(errorsOf(nested)).toEqual([expect.stringMatching(/^the answer could hold 4,10\d,\d{3} values, over the limit of 500,000 .*`first`/)]);
    // The largest route page with its riders (at most MAX_RIDERS_PER_RIDE each, however
    // many are asked for): 309,000, passes; so does a page size given as a variable,
    // counted as the largest page.
    const routePage = (first: string) =>
      `{ rides(source: 2, destination: 4, first: ${first}) { id timestamp createdBy { username } riders(first: 1000) { username createdAt } source { name } destination { name } } }`;
    expect(errorsOf(routePage('1000'))).toEqual([]);
    expect(errorsOf(`query($n: Int) ${routePage('$n')}`)).toEqual([]);
    // Without first, the default page: users × their rides × those rides' riders.
    expect(errorsOf('{ users { ridesCreated { riders { username } } } }')).toEqual([expect.stringMatching(/could hold 2,010,100 values/)]);
    expect(errorsOf('{ users(first: 10) { ridesCreated(first: 10) { riders { username } } } }')).toEqual([]);
    // Aliases add up.
    const aliased = Array.from({ length: 20 }, (_, i) => `a${i}: rides(source: 2, destination: 4, first: 1000) { riders { username } }`).join(' ');
    expect(errorsOf(`{ ${aliased} }`).join()).toMatch(/could hold 4,020,000 values/);
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
    expect(errorsOf(wide)).toEqual([expect.stringMatching(/query cost 1111\d+ exceeds/), expect.stringMatching(/could hold [\d,]+ values/)]);
  });

  it('refuse more aliases than allowed', () => {
    const aliases = Array.from({ length: 31 }, (_, i) => `a${i}: rideCount`).join(' ');
    expect(errorsOf(`{ ${aliases} }`)).toEqual(['more than 30 aliased fields']);
  });
});
