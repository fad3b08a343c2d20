import { PAGE_SIZE_LIMIT, rideCursor, rideCursorKey, type FieldSelection } from '../../schema';
import { selectionStatement } from '../../worker/selectionSql';
import { loadConfig } from '../../platform';
import { pageSize } from '../../gateway/pages';
import { plan as planWith } from './planning';

// Pages without any service: the gateway's bounds, the planner filling them in, and the
// keyset SQL a worker builds from them.
const PAGES = { defaultSize: 100, maxSize: 1000 };
const plan = (query: string, variables: Record<string, unknown> = {}) => planWith(query, variables, PAGES);

describe('page sizes', () => {
  it('default when unset, bounded by PAGE_SIZE_MAX', () => {
    expect(pageSize(undefined, PAGES)).toBe(100);
    expect(pageSize(null, PAGES)).toBe(100);
    expect(pageSize(1000, PAGES)).toBe(1000);
    expect(() => pageSize(1001, PAGES)).toThrow(/PAGE_SIZE_MAX/);
    expect(() => pageSize(0, PAGES)).toThrow(/PAGE_SIZE_MAX/);
  });

  it('PAGE_SIZE_DEFAULT may not exceed PAGE_SIZE_MAX, nor PAGE_SIZE_MAX the protocol limit', () => {
    expect(() => loadConfig({ PAGE_SIZE_DEFAULT: '200', PAGE_SIZE_MAX: '100' })).toThrow(/PAGE_SIZE_DEFAULT/);
    expect(() => loadConfig({ PAGE_SIZE_MAX: String(PAGE_SIZE_LIMIT + 1) })).toThrow(/PAGE_SIZE_MAX/);
    expect(loadConfig({}).pageSizeMax).toBe(1000);
  });

  it('ride cursors carry the keyset both ways', () => {
    const cursor = rideCursor('2031-06-01T08:30:00.000Z', 12345);
    expect(cursor).toBe('2031-06-01T08:30:00.000Z/12345');
    expect(rideCursorKey(cursor)).toEqual({ ts: '2031-06-01T08:30:00.000Z', id: 12345 });
  });
});

describe('the planner', () => {
  it('fills in the default page of every list, root and nested', () => {
    const fields = plan('{ rides(source: 2, destination: 4) { id riders { username } } user(username: "a") { ridesCreated { id } } }');
    expect(fields?.[0].args).toMatchObject({ first: 100 });
    expect(fields?.[0].select?.find((f) => f.field === 'riders')?.args).toEqual({ first: 100 });
    expect(fields?.[1].select?.[0].args).toEqual({ first: 100 });
  });

  it('keeps what the client asked for within bounds, and declines beyond them (the resolvers report it)', () => {
    expect(plan('query($a: String) { users(first: 5, after: $a) { username } }', { a: 'ravi' })?.[0].args).toEqual({ first: 5, after: 'ravi' });
    expect(plan('{ users(first: 1001) { username } }')).toBeNull();
    expect(plan('{ user(username: "a") { ridesJoined(first: 1001) { id } } }')).toBeNull();
    expect(plan('{ rides(source: 2, destination: 4, after: "yesterday") { id } }')).toBeNull();
  });
});

describe('keyset SQL', () => {
  const ride: FieldSelection[] = [{ key: 'id', field: 'id' }];

  it('a later page of a route starts after the cursor and takes at most `first` rows', () => {
    const { text, values } = selectionStatement([
      { key: 'rides', field: 'rides', args: { source: 2, destination: 4, upcomingOnly: false, first: 50, after: '2031-06-01T08:30:00.000Z/77' }, select: ride },
    ]);
    expect(text).toMatch(/\(r\d+\.ts, r\d+\.id\) > \(\$\d+::timestamptz, \$\d+::bigint\)/);
    expect(text).toMatch(/ORDER BY r\d+\.ts, r\d+\.id LIMIT \$\d+::int/);
    expect(text).not.toMatch(/OFFSET/);
    expect(values).toEqual(expect.arrayContaining([2, 4, '2031-06-01T08:30:00.000Z', 77, 50]));
  });

  it('users page by username', () => {
    const { text, values } = selectionStatement([{ key: 'users', field: 'users', args: { first: 10, after: 'm' }, select: [{ key: 'username', field: 'username' }] }]);
    expect(text).toMatch(/username > \$\d+::text ORDER BY u\d+\.username LIMIT \$\d+::int/);
    expect(values).toEqual(['m', 10]);
  });

  it('a list sent without `first` is bounded by the protocol limit; more than that is refused', () => {
    const { text } = selectionStatement([
      { key: 'ride', field: 'ride', args: { id: 1 }, select: [{ key: 'riders', field: 'riders', select: [{ key: 'username', field: 'username' }] }] },
    ]);
    expect(text).toContain(`LIMIT ${PAGE_SIZE_LIMIT}`);
    expect(() => selectionStatement([{ key: 'users', field: 'users', args: { first: PAGE_SIZE_LIMIT + 1 }, select: [{ key: 'username', field: 'username' }] }])).toThrow(/first/);
  });

  it('only list fields take arguments inside records', () => {
    expect(() =>
      selectionStatement([
        { key: 'ride', field: 'ride', args: { id: 1 }, select: [{ key: 'createdBy', field: 'createdBy', args: { first: 1 }, select: [{ key: 'username', field: 'username' }] }] },
      ]),
    ).toThrow(/takes no arguments/);
  });

  it("an answer read at a position also says when time alone changes it: upcoming routes' earliest ride, else never", () => {
    const upcoming = (s: number) => ({ key: `r${s}`, field: 'rides', args: { source: s, destination: 9, upcomingOnly: true }, select: ride });
    const two = selectionStatement([upcoming(1), upcoming(2), { key: 'all', field: 'rides', args: { source: 3, destination: 9, upcomingOnly: false }, select: ride }], true);
    expect(two.text.match(/SELECT min\(ts\) FROM rides WHERE source = \$\d+::int AND destination = \$\d+::int AND ts > now\(\)/g)).toHaveLength(2);
    expect(two.text).toContain('LEAST(');
    expect(selectionStatement([{ key: 'n', field: 'rideCount' }], true).text).toContain('NULL::float8 AS expires_in');
    expect(selectionStatement([upcoming(1)]).text).not.toContain('expires_in');
  });
});
