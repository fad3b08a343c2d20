import fc from 'fast-check';
import { MAX_KEYS_PER_OBJECT, MAX_NAME_LENGTH, selectionArgsSchema } from '../../schema';
import { selectionStatement } from '../../worker/selectionSql';
import { plan } from './planning';

// The gateway does not check the selections it plans against the catalogue before sending
// them (gateway/service.ts): every selection it plans must be one a worker accepts — its
// schema (names, keys per object) and its statement builder (depth, arguments).
const PAGES = { defaultSize: 100, maxSize: 1000 };
/** true: planned and accepted; false: planned but refused by the worker; null: declined (the resolvers answer). */
const accepted = (query: string, variables: Record<string, unknown> = {}) => {
  const fields = plan(query, variables, PAGES);
  if (fields === null) return null;
  if (!selectionArgsSchema.safeParse({ fields }).success) return false;
  try {
    selectionStatement(fields);
    return true;
  } catch {
    return false;
  }
};

describe('selections the gateway plans', () => {
  it('are accepted by the worker, whatever the document', () => {
    // Names up to past the worker's limit, and objects up to past its key limit.
    const name = fc.stringMatching(/^[_a-z][_0-9a-z]{0,70}$/, { size: 'max' });
    const aliased = (field: string) => fc.option(name, { nil: undefined }).map((alias) => (alias ? `${alias}: ${field}` : field));
    const first = fc.oneof({ arbitrary: fc.integer({ min: 1, max: 1000 }), weight: 9 }, { arbitrary: fc.constantFrom(-1, 0, 1001, 5000), weight: 1 });
    const page = fc.option(first, { nil: undefined }).map((n) => (n === undefined ? '' : `(first: ${n})`));
    const user = (depth: number): fc.Arbitrary<string> =>
      fc
        .array(
          fc.oneof(
            aliased('username'),
            aliased('createdAt'),
            aliased('__typename'),
            ...(depth > 0 ? [fc.tuple(page, ride(depth - 1)).chain(([p, s]) => aliased(`ridesCreated${p} { ${s} }`))] : []),
          ),
          { minLength: 1, maxLength: 4 },
        )
        .map((fs) => fs.join(' '));
    const area = fc.array(fc.oneof(aliased('id'), aliased('name')), { minLength: 1, maxLength: MAX_KEYS_PER_OBJECT + 5 }).map((fs) => fs.join(' '));
    const ride = (depth: number): fc.Arbitrary<string> =>
      fc
        .array(
          fc.oneof(
            aliased('id'),
            aliased('timestamp'),
            aliased('cursor'),
            user(depth).chain((s) => aliased(`createdBy { ${s} }`)),
            area.chain((s) => aliased(`source { ${s} }`)),
            fc.tuple(page, user(depth)).chain(([p, s]) => aliased(`riders${p} { ${s} }`)),
          ),
          { minLength: 1, maxLength: 5 },
        )
        .map((fs) => fs.join(' '));
    const root = fc.oneof(
      fc
        .tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), page, ride(2))
        .chain(([s, d, p, sel]) => aliased(`rides(source: ${s}, destination: ${d}${p ? `, ${p.slice(1, -1)}` : ''}) { ${sel} }`)),
      fc.tuple(fc.integer({ min: 1, max: 10 }), ride(2)).chain(([id, sel]) => aliased(`ride(id: ${id}) { ${sel} }`)),
      fc.tuple(fc.constantFrom('ravi', 'x'), user(2)).chain(([u, sel]) => aliased(`user(username: "${u}") { ${sel} }`)),
      fc.tuple(page, user(1)).chain(([p, sel]) => aliased(`users${p} { ${sel} }`)),
      area.chain((sel) => aliased(`areas { ${sel} }`)),
      aliased('rideCount'),
    );
    let planned = 0;
    fc.assert(
      fc.property(fc.array(root, { minLength: 1, maxLength: 4 }), (fields) => {
        // Validation happens before planning on the compiled path; here the worker's schema
        // is the judge, so documents that would not validate (clashing aliases) just plan or not.
        const verdict = accepted(`{ ${fields.join(' ')} }`);
        expect(verdict).not.toBe(false);
        if (verdict) planned++;
      }),
      { numRuns: 500 },
    );
    // Many documents plan: the property is about real selections, not declined ones.
    expect(planned).toBeGreaterThan(50);
  });

  it('stay within the worker bounds at their edges', () => {
    const keys = (n: number) => Array.from({ length: n }, (_, i) => `k${i}: id`).join(' ');
    expect(accepted(`{ ride(id: 1) { ${keys(MAX_KEYS_PER_OBJECT)} } }`)).toBe(true);
    expect(accepted(`{ ride(id: 1) { ${keys(MAX_KEYS_PER_OBJECT + 1)} } }`)).toBeNull();
    expect(accepted(`{ ${'a'.repeat(MAX_NAME_LENGTH)}: rideCount }`)).toBe(true);
    expect(accepted(`{ ${'a'.repeat(MAX_NAME_LENGTH + 1)}: rideCount }`)).toBeNull();
    // Each step nests two objects; the planner declines where a worker would refuse the depth.
    const nest = (depth: number): string => (depth === 0 ? 'id' : `createdBy { ridesCreated { ${nest(depth - 1)} } }`);
    expect(accepted(`{ ride(id: 1) { ${nest(7)} } }`)).toBe(true);
    expect(accepted(`{ ride(id: 1) { ${nest(8)} } }`)).toBeNull();
    expect(accepted('query($n: Int) { users(first: $n) { username } }', { n: 1001 })).toBeNull();
    expect(accepted('query($n: Int) { users(first: $n) { username } }', { n: 1000 })).toBe(true);
  });
});
