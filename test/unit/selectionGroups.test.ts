import type { FieldSelection, ReadRequest } from '../../schema';
import { SELECTIONS_PER_STATEMENT, selectionGroups } from '../../worker/slave';
import { selectionStatement, selectionsStatement } from '../../worker/selectionSql';

const scalars = (...names: string[]) => names.map((f) => ({ key: f, field: f }));
const rideById = (id: number): FieldSelection[] => [
  { key: 'ride', field: 'ride', args: { id }, select: [...scalars('id', 'timestamp'), { key: 'riders', field: 'riders', args: { first: 100 }, select: scalars('username') }] },
];
const route = (source: number, destination: number, upcomingOnly: boolean): FieldSelection[] => [
  { key: 'rides', field: 'rides', args: { source, destination, upcomingOnly, first: 100, after: null }, select: scalars('id') },
];
const read = (id: string, fields: FieldSelection[], op = 'selection') => ({
  request: { id, op, args: { fields }, minSeq: 0, consistency: 'strong' } satisfies ReadRequest,
  fields,
});

describe('selections a slave answers together', () => {
  it('are grouped by statement shape, in order, at most SELECTIONS_PER_STATEMENT to a group', () => {
    const reads = [
      ...[1, 2, 3, 4, 5, 6, 7].map((id) => read(`r${id}`, rideById(id))),
      read('a', route(1, 2, true)),
      read('b', route(3, 4, true)),
      read('c', route(1, 2, false)), // another statement: upcomingOnly adds a condition
      read('d', route(1, 2, true), 'selectionAt'), // another op: with the seq and expiry
      read('e', route(5, 6, true), 'selectionAt'),
    ];
    const groups = selectionGroups(reads).map((g) => g.map((r) => r.request.id));
    expect(SELECTIONS_PER_STATEMENT).toBeGreaterThan(1);
    const rides = groups.filter((g) => g[0].startsWith('r'));
    expect(rides.flat()).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7']);
    expect(rides.every((g) => g.length <= SELECTIONS_PER_STATEMENT)).toBe(true);
    expect(rides).toHaveLength(Math.ceil(7 / SELECTIONS_PER_STATEMENT));
    expect(groups).toContainEqual(['a', 'b']);
    expect(groups).toContainEqual(['c']);
    expect(groups).toContainEqual(['d', 'e']);
  });

  it('leave a selection whose statement cannot be built in a group of its own, to fail alone', () => {
    const refused = read('bad', [{ key: 'ride', field: 'ride', args: { id: 1 }, select: scalars('nope') }]);
    const groups = selectionGroups([read('r1', rideById(1)), refused, read('r2', rideById(2))]).map((g) => g.map((r) => r.request.id));
    expect(groups).toContainEqual(['bad']);
    expect(groups).toContainEqual(['r1', 'r2']);
  });

  it.each([false, true])('are one statement with a column each and their parameters numbered in order (with seq and expiry: %s)', (at) => {
    const each = [rideById(1), rideById(2), route(1, 2, true)];
    const { text, values } = selectionsStatement(each, at);
    // The same parameters as each statement alone, in the same order.
    expect(values).toEqual(each.flatMap((fields) => selectionStatement(fields, at).values));
    const numbers = [...new Set([...text.matchAll(/\$(\d+)::/g)].map((m) => Number(m[1])))].sort((a, b) => a - b);
    expect(numbers).toEqual(values.map((_, i) => i + 1));
    expect(each.map((_, i) => text.includes(`::text AS doc${i}`))).toEqual([true, true, true]);
    expect(each.map((_, i) => text.includes(`AS expires_in${i}`))).toEqual([at, at, at]);
    expect(text.includes('AS seq')).toBe(at);
  });
});
