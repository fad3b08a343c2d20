import { routeKey } from '../../gateway/live/dataKeys';
import { DbaasError } from '../../schema';
import { LiveFeed, type LiveChange } from '../../gateway/live/liveFeed';

const change = (seq: number, route = routeKey(1, 2)): LiveChange => ({
  type: 'RIDE_CREATED',
  seq,
  at: '2026-01-01T00:00:00.000Z',
  rideId: seq,
  ride: null,
  rider: null,
  rides: null,
  keys: [route],
});

/** After all of a seq's changes. */
const at = (seq: number, rideId: number | null = null) => ({ seq, rideId });

/** The changes of one deleteUser entry on a route: a RIDE_DELETED per ride, in ride id order. */
const deletions = (seq: number, rideIds: number[]): LiveChange[] => rideIds.map((rideId) => ({ ...change(seq), type: 'RIDE_DELETED', rideId }));

/** The error a subscription ends with: its last value, after which it is done. */
async function endOf(sub: AsyncIterator<unknown>): Promise<unknown> {
  const last = await sub.next();
  expect(last.done).toBe(false);
  expect(last.value).toBeInstanceOf(DbaasError);
  expect(await sub.next()).toEqual({ done: true, value: undefined });
  return last.value;
}

async function take(it: AsyncIterator<unknown>, n: number): Promise<number[]> {
  const seqs: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    if (r.done) break;
    seqs.push((r.value as LiveChange).seq);
  }
  return seqs;
}

describe('LiveFeed', () => {
  it('gives a subscription resuming from the history the same changes, field for field, as a live one got', async () => {
    const feed = new LiveFeed({ historySize: 100, historyBytes: 2 ** 30, bufferSize: 100 });
    feed.restartAt(1);
    const live = feed.subscribe(routeKey(1, 2), at(0));
    const user = { username: 'ann', createdAt: '2026-01-01T00:00:00.000Z' };
    const ride = { id: 7, cursor: 'c7', createdBy: user, timestamp: '2030-01-01T10:00:00.000Z', source: { id: 1, name: 'A' }, destination: { id: 2, name: 'B' }, riders: [user] };
    const joined: LiveChange = { ...change(1), type: 'RIDE_JOINED', rideId: 7, ride, rider: user, keys: [routeKey(1, 2), 'ride:7'] };
    feed.advance(2, [joined, { ...change(2), type: 'RIDE_DELETED', rideId: 7 }]);
    const first = [(await live.next()).value, (await live.next()).value];
    const resumed = feed.subscribe(routeKey(1, 2), at(0));
    expect([(await resumed.next()).value, (await resumed.next()).value]).toEqual(first);
    expect(first[0]).toEqual(joined);
  });

  it('hands a resumed subscription the kept changes after its seq, then live ones, each once and in order', async () => {
    const feed = new LiveFeed({ historySize: 100, historyBytes: 2 ** 30, bufferSize: 100 });
    feed.restartAt(1);
    feed.advance(3, [change(1), change(2, routeKey(5, 6)), change(3)]);
    const sub = feed.subscribe(routeKey(1, 2), at(1));
    feed.advance(5, [change(4), change(5, routeKey(5, 6))]);
    feed.advance(6, [change(6)]);
    expect(await take(sub, 3)).toEqual([3, 4, 6]);
    await sub.return();
    expect(feed.subscriptions).toBe(0);
  });

  it('starts a snapshot subscription after the snapshot seq: nothing twice, nothing missed', async () => {
    const feed = new LiveFeed({ historySize: 100, historyBytes: 2 ** 30, bufferSize: 100 });
    feed.restartAt(1);
    feed.advance(2, [change(1), change(2)]);
    const sub = feed.subscribe(routeKey(1, 2));
    feed.advance(4, [change(3), change(4)]);
    // The snapshot was read at seq 3: change 3 is in it, 4 is not.
    sub.startAfter(3);
    feed.advance(5, [change(5)]);
    expect(await take(sub, 2)).toEqual([4, 5]);
  });

  it('refuses to resume past what it keeps (SNAPSHOT_REQUIRED)', async () => {
    const feed = new LiveFeed({ historySize: 2, historyBytes: 2 ** 30, bufferSize: 100 });
    feed.restartAt(10);
    feed.advance(13, [change(11), change(12), change(13)]);
    // Kept: 12 and 13; resumable after 11 or later.
    expect(feed.oldestResumable).toBe(11);
    expect(await endOf(feed.subscribe(routeKey(1, 2), at(10)))).toMatchObject({ code: 'SNAPSHOT_REQUIRED' });
    expect(await take(feed.subscribe(routeKey(1, 2), at(11)), 2)).toEqual([12, 13]);
  });

  it("keeps no more of the changes' text than its byte bound, however few changes that is", async () => {
    const feed = new LiveFeed({ historySize: 1000, historyBytes: 5000, bufferSize: 100 });
    feed.restartAt(1);
    // A joined ride's change carries its riders: ~1.2 KB each here.
    const riders = Array.from({ length: 20 }, (_, k) => ({ username: `rider_${k}`, createdAt: '2026-01-01T00:00:00.000Z' }));
    const big = (seq: number): LiveChange => ({ ...change(seq), type: 'RIDE_JOINED', rider: riders[0], ride: { riders } as unknown as LiveChange['ride'] });
    for (let seq = 1; seq <= 40; seq++) feed.advance(seq, [big(seq)]);
    const oldest = feed.oldestResumable!;
    // The bound plus at most the sixteenth a trim waits for: 3 to 5 changes of ~1.4 KB, not 40.
    expect(40 - oldest).toBeGreaterThanOrEqual(3);
    expect(40 - oldest).toBeLessThanOrEqual(5);
    expect(await endOf(feed.subscribe(routeKey(1, 2), at(oldest - 1)))).toMatchObject({ code: 'SNAPSHOT_REQUIRED' });
    const kept = Array.from({ length: 40 - oldest }, (_, k) => oldest + 1 + k);
    expect(await take(feed.subscribe(routeKey(1, 2), at(oldest)), kept.length)).toEqual(kept);
  });

  it('ends a subscription that stops reading (SLOW_CONSUMER, with the seq to resume after) and keeps serving the others', async () => {
    const feed = new LiveFeed({ historySize: 1000, historyBytes: 2 ** 30, bufferSize: 3 });
    feed.restartAt(1);
    const slow = feed.subscribe(routeKey(1, 2), at(0));
    const fast = feed.subscribe(routeKey(1, 2), at(0));
    feed.advance(1, [change(1)]);
    expect(await take(slow, 1)).toEqual([1]);
    expect(await take(fast, 1)).toEqual([1]);
    const seen: number[] = [];
    for (let seq = 2; seq <= 10; seq++) {
      feed.advance(seq, [change(seq)]);
      seen.push(...(await take(fast, 1)));
    }
    expect(seen).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await endOf(slow)).toMatchObject({ code: 'SLOW_CONSUMER', message: expect.stringMatching(/afterSeq: 1\b/) });
    expect(feed.subscriptions).toBe(1);
  });

  it("keeps every key's changes right through trims: a resume gets exactly its key's kept changes after its seq", async () => {
    // A key with one change kept holds it without a list; keys come and go as the history trims.
    const feed = new LiveFeed({ historySize: 32, historyBytes: 2 ** 30, bufferSize: 1000 });
    feed.restartAt(1);
    let random = 7;
    const next = (n: number) => (random = (random * 48271) % 2147483647) % n;
    const all: LiveChange[] = [];
    for (let seq = 1; seq <= 600;) {
      const batch: LiveChange[] = [];
      for (let i = next(4); i >= 0; i--, seq++) {
        // A ride's own key, one of three routes, one or two of 24 users (keys are distinct):
        // some keys have many changes kept, some one or two.
        const creator = next(24);
        const keys = [`ride:${seq}`, routeKey(1, 1 + next(3)), `user:u${creator}`, ...(next(3) ? [] : [`user:u${(creator + 1 + next(23)) % 24}`])];
        batch.push({ ...change(seq), keys });
      }
      feed.advance(seq - 1, batch);
      all.push(...batch);
      if (next(5)) continue;
      const oldest = feed.oldestResumable!;
      const kept = all.filter((c) => c.seq > oldest);
      const after = oldest + next(seq - 1 - oldest);
      for (const key of ['route:1:1', 'route:1:2', 'route:1:3', ...Array.from({ length: 24 }, (_, u) => `user:u${u}`), `ride:${after + 1}`]) {
        const expected = kept.filter((c) => c.seq > after && c.keys.includes(key)).map((c) => c.seq);
        const sub = feed.subscribe(key, at(after));
        // What a resume is owed is buffered at once: a missing change shows as a wait.
        const taken = await Promise.race([take(sub, expected.length), new Promise((resolve) => setTimeout(resolve, 1000, 'still waiting'))]);
        expect(taken).toEqual(expected);
        await sub.return();
      }
    }
    expect(feed.subscriptions).toBe(0);
  });

  it('resumes among the changes one write gave a key at one seq, after the ride given (afterRideId)', async () => {
    const feed = new LiveFeed({ historySize: 100, historyBytes: 2 ** 30, bufferSize: 100 });
    feed.restartAt(1);
    feed.advance(1, [change(1)]);
    feed.advance(2, deletions(2, [10, 20, 30]));
    feed.advance(3, [change(3)]);
    const rides = async (after: { seq: number; rideId: number | null }) => {
      const sub = feed.subscribe(routeKey(1, 2), after);
      const got: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await Promise.race([sub.next(), new Promise<'none'>((resolve) => setTimeout(resolve, 50, 'none'))]);
        if (r === 'none' || r.done) break;
        got.push(r.value instanceof DbaasError ? r.value.code : `${r.value.seq}/${r.value.rideId}`);
      }
      await sub.return();
      return got;
    };
    expect(await rides(at(1))).toEqual(['2/10', '2/20', '2/30', '3/3']);
    expect(await rides(at(2, 10))).toEqual(['2/20', '2/30', '3/3']);
    expect(await rides(at(2, 30))).toEqual(['3/3']);
    expect(await rides(at(2))).toEqual(['3/3']);
    // Live changes are held to the same position as kept ones.
    const live = feed.subscribe(routeKey(1, 2), at(4, 41));
    feed.advance(4, deletions(4, [40, 41, 42]));
    expect(((await live.next()).value as LiveChange).rideId).toBe(42);
  });

  it("says where to resume among one seq's changes when it ends a slow subscription midway (SLOW_CONSUMER)", async () => {
    const feed = new LiveFeed({ historySize: 100, historyBytes: 2 ** 30, bufferSize: 3 });
    feed.restartAt(1);
    const slow = feed.subscribe(routeKey(1, 2), at(0));
    feed.advance(1, deletions(1, [10, 20, 30]));
    expect(((await slow.next()).value as LiveChange).rideId).toBe(10);
    feed.advance(2, [change(2)]);
    feed.advance(3, [change(3)]);
    // 20 and 30 of seq 1 were never sent: resuming after all of seq 1 would skip them.
    expect(await endOf(slow)).toMatchObject({ code: 'SLOW_CONSUMER', message: expect.stringMatching(/afterSeq: 1, afterRideId: 10$/) });
    expect(await take(feed.subscribe(routeKey(1, 2), at(1, 10)), 4)).toEqual([1, 1, 2, 3]);
  });

  it('sends a resume among the changes of a seq it may no longer keep whole to a snapshot', async () => {
    const feed = new LiveFeed({ historySize: 16, historyBytes: 2 ** 30, bufferSize: 100 });
    feed.restartAt(1);
    feed.advance(1, deletions(1, [1, 2, 3]));
    for (let seq = 2; seq <= 16; seq++) feed.advance(seq, [change(seq)]);
    // The trim came at 18 changes, two past the size: two of seq 1's three went.
    expect(feed.oldestResumable).toBe(1);
    expect(await endOf(feed.subscribe(routeKey(1, 2), at(1, 1)))).toMatchObject({ code: 'SNAPSHOT_REQUIRED' });
    expect(await take(feed.subscribe(routeKey(1, 2), at(1)), 15)).toEqual(Array.from({ length: 15 }, (_, i) => i + 2));
    // After a restart nothing of the seq before it was read.
    feed.restartAt(20);
    expect(await endOf(feed.subscribe(routeKey(1, 2), at(19, 4)))).toMatchObject({ code: 'SNAPSHOT_REQUIRED' });
    const afterRestart = feed.subscribe(routeKey(1, 2), at(19));
    feed.advance(20, [change(20)]);
    expect(await take(afterRestart, 1)).toEqual([20]);
  });

  it("counts only live changes against a subscription's buffer: a resume owed more kept changes gets them all", async () => {
    const feed = new LiveFeed({ historySize: 100, historyBytes: 2 ** 30, bufferSize: 3 });
    feed.restartAt(1);
    for (let seq = 1; seq <= 20; seq++) feed.advance(seq, [change(seq)]);
    const resumed = feed.subscribe(routeKey(1, 2), at(0));
    feed.advance(21, [change(21)]);
    feed.advance(22, [change(22)]);
    expect(await take(resumed, 22)).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
    // Three live ones unread end it, with the position of the last change it took.
    for (let seq = 23; seq <= 26; seq++) feed.advance(seq, [change(seq)]);
    expect(await endOf(resumed)).toMatchObject({ code: 'SLOW_CONSUMER', message: expect.stringMatching(/afterSeq: 22$/) });
  });

  it('ends a resume that has not read its backlog when the history trims past it, so it keeps no dropped change alive', async () => {
    const feed = new LiveFeed({ historySize: 16, historyBytes: 2 ** 30, bufferSize: 100 });
    feed.restartAt(1);
    for (let seq = 1; seq <= 10; seq++) feed.advance(seq, [change(seq)]);
    const idle = feed.subscribe(routeKey(1, 2), at(0));
    const reader = feed.subscribe(routeKey(1, 2), at(0));
    expect(await take(reader, 10)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (let seq = 11; seq <= 18; seq++) feed.advance(seq, [change(seq)]); // the trim at 18 drops 1 and 2
    expect(await endOf(idle)).toMatchObject({ code: 'SNAPSHOT_REQUIRED' });
    expect(await take(reader, 8)).toEqual([11, 12, 13, 14, 15, 16, 17, 18]);
  });

  it("holds no live change the history has dropped: a subscription that stops reading ends when the history's bytes pass it, long before LIVE_BUFFER_CHANGES", async () => {
    // Each change ~1.2 KB of text; the history keeps ~4-5 of them, a buffer could hold 1,000.
    const feed = new LiveFeed({ historySize: 10_000, historyBytes: 5000, bufferSize: 1000 });
    feed.restartAt(1);
    const riders = Array.from({ length: 20 }, (_, k) => ({ username: `rider_${k}`, createdAt: '2026-01-01T00:00:00.000Z' }));
    const big = (seq: number): LiveChange => ({ ...change(seq), type: 'RIDE_JOINED', rider: riders[0], ride: { riders } as unknown as LiveChange['ride'] });
    const idle = feed.subscribe(routeKey(1, 2), at(0));
    const awaitingSnapshot = feed.subscribe(routeKey(1, 2));
    const reader = feed.subscribe(routeKey(1, 2), at(0));
    const read: number[] = [];
    for (let seq = 1; seq <= 40; seq++) {
      feed.advance(seq, [big(seq)]);
      read.push(...(await take(reader, 1)));
    }
    expect(read).toEqual(Array.from({ length: 40 }, (_, k) => k + 1));
    expect(await endOf(idle)).toMatchObject({ code: 'SNAPSHOT_REQUIRED', message: expect.stringMatching(/seq 1\b/) });
    expect(await endOf(awaitingSnapshot)).toMatchObject({ code: 'SNAPSHOT_REQUIRED' });
    expect(feed.subscriptions).toBe(1);
  });

  it('sends a long resume whole and in order while letting go of what it has sent', async () => {
    const feed = new LiveFeed({ historySize: 10_000, historyBytes: 2 ** 30, bufferSize: 10 });
    feed.restartAt(1);
    for (let seq = 1; seq <= 5000; seq++) feed.advance(seq, [change(seq)]);
    const resumed = feed.subscribe(routeKey(1, 2), at(0));
    const first = await take(resumed, 2500);
    feed.advance(5001, [change(5001)]);
    const rest = await take(resumed, 2501);
    expect([...first, ...rest]).toEqual(Array.from({ length: 5001 }, (_, k) => k + 1));
  });

  it('names no seq to resume from when a subscription ends before its snapshot is out', async () => {
    const feed = new LiveFeed({ historySize: 100, historyBytes: 2 ** 30, bufferSize: 2 });
    feed.restartAt(1);
    const waiting = feed.subscribe(routeKey(1, 2));
    for (let seq = 1; seq <= 3; seq++) feed.advance(seq, [change(seq)]);
    waiting.startAfter(1);
    expect(await endOf(waiting)).toMatchObject({ code: 'SLOW_CONSUMER', message: expect.stringMatching(/no afterSeq \(a new snapshot\)$/) });
  });

  it('ends every subscription when the log says something changes cannot describe', async () => {
    const feed = new LiveFeed({ historySize: 100, historyBytes: 2 ** 30, bufferSize: 100 });
    feed.restartAt(1);
    const sub = feed.subscribe(routeKey(1, 2), at(0));
    feed.restartAt(8);
    expect(await endOf(sub)).toMatchObject({ code: 'SNAPSHOT_REQUIRED' });
  });

  // graphql-ws waits in next() between changes: the feed settles that waiting call as it
  // offers, ends or trims, not only a next() made afterwards.
  it('settles a waiting next(): with the first change of a burst, then SLOW_CONSUMER after it; done on return()', async () => {
    const feed = new LiveFeed({ historySize: 1000, historyBytes: 2 ** 30, bufferSize: 3 });
    feed.restartAt(1);
    const slow = feed.subscribe(routeKey(1, 2), at(1));
    const waiting = slow.next();
    feed.advance(6, [change(2), change(3), change(4), change(5), change(6)]);
    expect((await waiting).value).toMatchObject({ seq: 2 });
    expect(await endOf(slow)).toMatchObject({ code: 'SLOW_CONSUMER', message: expect.stringMatching(/afterSeq: 2$/) });

    const left = feed.subscribe(routeKey(1, 2), at(6));
    const pending = left.next();
    await left.return();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(feed.subscriptions).toBe(0);
  });

  it('rejects a waiting next() of a resume whose backlog the history trims past (SNAPSHOT_REQUIRED)', async () => {
    const feed = new LiveFeed({ historySize: 16, historyBytes: 2 ** 30, bufferSize: 1000 });
    feed.restartAt(1);
    feed.advance(3, [change(2), change(3)]);
    const resumed = feed.subscribe(routeKey(1, 2), at(1));
    expect(await take(resumed, 1)).toEqual([2]);
    const other = feed.subscribe(routeKey(3, 4), at(3));
    const waiting = other.next();
    for (let seq = 4; seq <= 40; seq++) feed.advance(seq, [change(seq, routeKey(3, 4))]);
    expect((await waiting).value).toMatchObject({ seq: 4 });
    expect(await endOf(resumed)).toMatchObject({ code: 'SNAPSHOT_REQUIRED' });
  });
});
