import { answerDependencies, keysChangedBy } from '../../gateway/readCache/dependencies';
import { answerKey, CHANGED_KEYS_KEPT, CLOCK_MARGIN_MS, keptAnswerOf, ReadCache } from '../../gateway/readCache/readCache';
import type { FieldSelection, SelectionAnswer } from '../../schema';
import { newRequestContext, RideService, type Transport } from '../../gateway/service';
import { entry, ride } from './logEntries';

const f = (field: string, select?: FieldSelection[], args?: Record<string, unknown>): FieldSelection => ({ key: field, field, select, args });
const USER = [f('username')];

describe('what an answer depends on', () => {
  it('a route page: its route; its riders are covered by it', () => {
    expect(answerDependencies([f('rides', [f('id'), f('riders', USER), f('createdBy', USER)], { source: 2, destination: 4, upcomingOnly: true })])).toEqual(['route:2:4']);
  });

  it('a user named at the root covers their own ride lists', () => {
    expect(answerDependencies([f('user', [f('ridesJoined', [f('riders', USER)])], { username: 'asha' })])).toEqual(['user:asha']);
  });

  it("ride lists of a user the log cannot name (the users page, a ride's rider) depend on any ride", () => {
    expect(answerDependencies([f('users', [f('ridesCreated', [f('id')])], { first: 5 })])?.sort()).toEqual(['rides:any', 'users']);
    expect(answerDependencies([f('ride', [f('riders', [f('ridesJoined', [f('id')])])], { id: 7 })])?.sort()).toEqual(['ride:7', 'rides:any']);
  });

  it('areas depend on nothing; a field these rules do not know is not cached', () => {
    expect(answerDependencies([f('areas', [f('id')])])).toEqual([]);
    expect(answerDependencies([f('workers', [f('id')])])).toBeNull();
    expect(answerDependencies([f('ride', [f('id')], { id: '7' })])).toBeNull();
  });
});

describe('what a write changed', () => {
  it('a join: route, ride, creator, the joiner and every rider', () => {
    expect(keysChangedBy(entry(9, 'joinRide', { rideId: 7, username: 'ravi' }, ride(['mira', 'ravi'])))).toEqual([
      'route:2:4',
      'ride:7',
      'user:asha',
      'user:ravi',
      'user:mira',
      'rides:any',
    ]);
  });

  it('a created ride also changes the ride count; a new user the users page', () => {
    expect(keysChangedBy(entry(3, 'createRide', {}, ride()))).toEqual(['route:2:4', 'ride:7', 'user:asha', 'rideCount', 'rides:any']);
    expect(keysChangedBy(entry(3, 'createUser', { username: 'zoe', passwordHash: 'x' }))).toEqual(['user:zoe', 'users']);
  });

  it('a deleted user: the user, the users page, the ride count, its rides with their riders, and the rides it joined with their creators and other riders', () => {
    const rider = { username: 'asha', createdAt: '2026-01-01T00:00:00.000Z' };
    const args = {
      username: 'asha',
      rides: [{ id: 7, source: 2, destination: 4, riders: ['mira'] }],
      left: { rider, rides: [{ id: 9, source: 4, destination: 2, createdBy: 'ravi', riders: ['zoe'] }] },
      more: false,
    };
    expect(keysChangedBy(entry(4, 'deleteUser', args))).toEqual([
      'user:asha',
      'users',
      'rideCount',
      'rides:any',
      'route:2:4',
      'ride:7',
      'user:mira',
      'route:4:2',
      'ride:9',
      'user:ravi',
      'user:zoe',
    ]);
    // A user with no rides, created or joined: no ride list changes.
    expect(keysChangedBy(entry(4, 'deleteUser', { ...args, rides: [], left: { rider, rides: [] } }))).toEqual(['user:asha', 'users']);
    // Past the bound, or from an entry that does not name the other riders of the rides it joined.
    expect(keysChangedBy(entry(4, 'deleteUser', { ...args, rides: [], left: { rider, rides: [] }, more: true }))).toBe('everything');
    expect(keysChangedBy(entry(4, 'deleteUser', { ...args, left: { rider, rides: [{ id: 9, source: 4, destination: 2, createdBy: 'ravi' }] } }))).toBe('everything');
  });

  it('what the log cannot name changes everything', () => {
    expect(keysChangedBy(entry(4, 'deleteUser', { username: 'asha', rides: [], more: false }))).toBe('everything');
    expect(keysChangedBy(entry(4, 'clearDatabase', {}))).toBe('everything');
    expect(keysChangedBy(entry(4, 'deleteRide', { rideId: 7 }))).toBe('everything');
    expect(keysChangedBy(entry(4, 'deleteRide', { rideId: 7, source: 2, destination: 4, createdBy: 'asha', riders: [], more: true }))).toBe('everything');
    expect(keysChangedBy(entry(4, 'joinRide', { rideId: 7, username: 'ravi' }, null))).toBe('everything');
  });
});

const observed = () => {
  const counts = { hit: 0, miss: 0, invalidated: 0 };
  return { counts, observer: { hit: () => counts.hit++, miss: () => void counts.miss++, invalidated: (n: number) => (counts.invalidated += n) } };
};
const answer = (seq: number, data = `{"at":${seq}}`, expiresAt: number | null = null) => ({ seq, data, expiresAt });

describe('the read cache', () => {
  const started = (seq = 1) => {
    const { counts, observer } = observed();
    const cache = new ReadCache({ maxBytes: 1 << 20 }, observer);
    cache.restartAt(seq);
    return { cache, counts };
  };

  it('serves an answer until a write it depends on is taken, and not one that depends on other keys', async () => {
    const { cache, counts } = started();
    cache.store('q', answer(0), ['route:2:4']);
    expect(await cache.lookup('q', 0, 0)).toBe('{"at":0}');
    cache.take(entry(1, 'createUser', { username: 'zoe' }));
    expect(await cache.lookup('q', 1, 0)).toBe('{"at":0}');
    cache.take(entry(2, 'createRide', {}, ride()));
    expect(await cache.lookup('q', 2, 0)).toBeUndefined();
    expect(counts).toEqual({ hit: 2, miss: 1, invalidated: 1 });
  });

  it('drops every answer that depends on a changed key, also after others on that key were dropped', async () => {
    const { cache, counts } = started();
    for (const q of ['a', 'b', 'c']) cache.store(q, answer(0), ['route:2:4', `only:${q}`]);
    cache.store('a', answer(0, '{"again":0}'), ['route:2:4']); // the same key stored again is still one dependent
    cache.take(entry(1, 'createRide', {}, { ...ride(), source: { id: 9, name: 'x' }, destination: { id: 9, name: 'x' } }));
    cache.take(entry(2, 'createUser', { username: 'only' })); // touches none of them
    expect(counts.invalidated).toBe(0);
    cache.take(entry(3, 'createRide', {}, ride()));
    expect(counts.invalidated).toBe(3);
    for (const q of ['a', 'b', 'c']) expect(await cache.lookup(q, 3, 0)).toBeUndefined();
    cache.store('d', answer(3), ['route:2:4']);
    cache.take(entry(4, 'createRide', {}, ride()));
    expect(counts.invalidated).toBe(4);
  });

  it('serves nothing for a position the log reader has not taken; waits for it a while', async () => {
    const { cache } = started();
    cache.store('q', answer(0), ['route:2:4']);
    expect(await cache.lookup('q', 1, 0)).toBeUndefined();
    const waiting = cache.lookup('q', 1, 1000);
    cache.take(entry(1, 'createUser', { username: 'zoe' }));
    expect(await waiting).toBe('{"at":0}');
  });

  it('keeps no answer read before a write that changed it, when that write was taken first', async () => {
    const { cache } = started();
    cache.take(entry(1, 'createRide', {}, ride()));
    cache.store('old', answer(0), ['route:2:4']);
    cache.store('new', answer(1), ['route:2:4']);
    expect(await cache.lookup('old', 1, 0)).toBeUndefined();
    expect(await cache.lookup('new', 1, 0)).toBe('{"at":1}');
  });

  it('keeps no answer read before the changes it still remembers, whatever keys the answer names', async () => {
    const { cache } = started();
    // Each ride its own id: every write brings at least one key not kept yet.
    const writes = CHANGED_KEYS_KEPT + 1;
    for (let seq = 1; seq <= writes; seq++) cache.take(entry(seq, 'createRide', {}, { ...ride(), id: seq }));
    cache.store('early', answer(1), ['route:98:99']);
    cache.store('recent', answer(writes - 1), ['route:98:99']);
    expect(await cache.lookup('early', writes, 0)).toBeUndefined();
    expect(await cache.lookup('recent', writes, 0)).toBe(`{"at":${writes - 1}}`);
  });

  it('a gap, or a write that changes everything, empties it; nothing older than that is kept afterwards', async () => {
    const { cache } = started();
    cache.store('q', answer(0), []);
    cache.take(entry(1, 'clearDatabase', {}));
    expect(await cache.lookup('q', 1, 0)).toBeUndefined();
    cache.store('q', answer(0), []);
    expect(await cache.lookup('q', 1, 0)).toBeUndefined();
    cache.store('q', answer(1), []);
    cache.restartAt(10);
    expect(await cache.lookup('q', 9, 0)).toBeUndefined();
  });

  it('expires an answer by time alone: the time left the replica gave, from when the read was sent, a clock margin and a thousandth early', async () => {
    const { cache } = started();
    // Sent at 5 s by the gateway's clock; the ride departs 100 s later by the replica's.
    cache.store('q', keptAnswerOf({ seq: 0, data: '{}', expiresInMs: 100_000 }, 5_000), []);
    const expiry = 5_000 + 100_000 - 100 - CLOCK_MARGIN_MS;
    expect(await cache.lookup('q', 0, 0, () => expiry - 1)).toBe('{}');
    expect(await cache.lookup('q', 0, 0, () => expiry)).toBeUndefined();
    expect(keptAnswerOf({ seq: 0, data: '{}', expiresInMs: null }, 5_000).expiresAt).toBeNull();
    // A worker of an earlier version sends no time left: its answer is served by no lookup.
    cache.store('old', keptAnswerOf({ seq: 0, data: '{}', expiresAt: 10_000 } as unknown as SelectionAnswer, 5_000), []);
    expect(await cache.lookup('old', 0, 0, () => 0)).toBeUndefined();
  });

  it('serves nothing before the log reader starts or while it is disconnected', async () => {
    const { counts, observer } = observed();
    const cache = new ReadCache({ maxBytes: 1 << 20 }, observer);
    cache.store('q', answer(0), []);
    cache.restartAt(1);
    expect(await cache.lookup('q', 0, 0)).toBeUndefined();
    cache.store('q', answer(0), []);
    cache.connected(false);
    expect(await cache.lookup('q', 0, 0)).toBeUndefined();
    cache.connected(true);
    expect(await cache.lookup('q', 0, 0)).toBe('{"at":0}');
    expect(counts.hit).toBe(1);
  });

  it('holds at most its byte budget, least recently used going first, and forgets their dependencies', async () => {
    const { counts, observer } = observed();
    const cache = new ReadCache({ maxBytes: 8000 }, observer);
    cache.restartAt(1);
    for (let i = 0; i < 20; i++) cache.store(`q${i}`, answer(0, 'x'.repeat(300)), [`route:${i}:1`]);
    expect(cache.size.bytes).toBeLessThanOrEqual(8000);
    expect(cache.size.answers).toBeLessThan(20);
    expect(await cache.lookup('q19', 0, 0)).toBeDefined();
    expect(await cache.lookup('q0', 0, 0)).toBeUndefined();
    // Evicted answers are not counted again when their route changes.
    cache.take(entry(1, 'createRide', {}, { ...ride(), source: { id: 0, name: 'a' }, destination: { id: 1, name: 'b' } }));
    expect(counts.invalidated).toBe(0);
    // An answer too large for an eighth of the budget is not kept at all.
    cache.store('big', answer(1, 'x'.repeat(2000)), []);
    expect(await cache.lookup('big', 1, 0)).toBeUndefined();
  });
});

describe('replica reads shared by the same question asked at once', () => {
  /** A transport whose reads wait until the test answers them. */
  const transport = () => {
    const reads: Array<{ minSeq: number; answer: (seq: number, data: string, expiresInMs?: number | null) => void }> = [];
    const t = {
      lastSeq: 5,
      reads,
      read: (_op: string, _args: unknown, options: { minSeq: number }) =>
        new Promise((resolve) =>
          reads.push({ minSeq: options.minSeq, answer: (seq, data, expiresInMs = null) => resolve({ result: { seq, data, expiresInMs }, workerId: 'w1' }) }),
        ),
      write: () => Promise.reject(new Error('no writes here')),
    };
    return t;
  };
  const fields: FieldSelection[] = [f('rides', [f('id')], { source: 2, destination: 4, upcomingOnly: true, first: 100 })];
  const key = answerKey(JSON.stringify(fields));

  it('a request joins a read under way, and reads again itself when that read was asked before a write it must see', async () => {
    const t = transport();
    const cache = new ReadCache({ maxBytes: 1 << 20 }, observed().observer);
    cache.restartAt(1);
    let counted = 0;
    const service = new RideService(t as unknown as Transport, { noteRead: () => void counted++ }, undefined, undefined, undefined, cache);
    const a = service.selection(newRequestContext(), fields, key);
    const early = service.selection(newRequestContext(), fields, key); // same position: joins
    await Promise.resolve();
    t.lastSeq = 7; // a write this gateway acknowledged
    const late = service.selection(newRequestContext(), fields, key);
    await new Promise((r) => setImmediate(r));
    expect(t.reads.map((r) => r.minSeq)).toEqual([5]);
    t.reads[0].answer(6, '{"v":6}');
    expect(await a).toBe('{"v":6}');
    expect(await early).toBe('{"v":6}');
    await new Promise((r) => setImmediate(r));
    expect(t.reads.map((r) => r.minSeq)).toEqual([5, 7]);
    t.reads[1].answer(7, '{"v":7}');
    expect(await late).toBe('{"v":7}');
    // Every request counts for the autoscaler (READS_PER_SLAVE), shared or not; and a hit too.
    expect(counted).toBe(3);
    cache.take(entry(7, 'createUser', { username: 'zoe' }));
    expect(await service.selection(newRequestContext(), fields, key)).toBe('{"v":7}');
    expect(counted).toBe(4);
    expect(t.reads).toHaveLength(2);
  });

  it('a request that joined a read reads again itself when a ride the answer lists may have departed since', async () => {
    const t = transport();
    const cache = new ReadCache({ maxBytes: 1 << 20 }, observed().observer);
    cache.restartAt(1);
    const service = new RideService(t as unknown as Transport, { noteRead: () => undefined }, undefined, undefined, undefined, cache);
    const first = service.selection(newRequestContext(), fields, key);
    const joined = service.selection(newRequestContext(), fields, key);
    await new Promise((r) => setImmediate(r));
    // Its earliest ride departs within the clock margin: as of the joiner's arrival it may be gone.
    t.reads[0].answer(5, '{"v":"before"}', CLOCK_MARGIN_MS / 2);
    expect(await first).toBe('{"v":"before"}');
    await new Promise((r) => setImmediate(r));
    expect(t.reads).toHaveLength(2);
    t.reads[1].answer(5, '{"v":"after"}');
    expect(await joined).toBe('{"v":"after"}');
  });

  it('never reads below where the first master this gateway saw stood, though it acknowledged nothing itself (a restarted gateway)', async () => {
    const t = transport();
    t.lastSeq = 0;
    const waits = { headSeq: () => 900, startSeq: () => 900, lookahead: 100, maxWaiting: 10 };
    const service = new RideService(t as unknown as Transport, { noteRead: () => undefined }, undefined, waits, undefined, undefined);
    void service.selection(newRequestContext(), fields, key);
    await new Promise((r) => setImmediate(r));
    expect(t.reads.map((r) => r.minSeq)).toEqual([900]);
  });
});
