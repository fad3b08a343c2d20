import { EventEmitter } from 'node:events';
import { EventFanOut } from '../../gateway/graphql/eventFanOut';

describe('the cluster event fan-out', () => {
  it('delivers every event to every subscriber through one listener', async () => {
    const source = new EventEmitter();
    const fanOut = new EventFanOut<number>(source, 'event');
    const subscribers = Array.from({ length: 50 }, () => fanOut.subscribe());
    const first = subscribers.map((s) => s.next());
    expect(source.listenerCount('event')).toBe(1);
    source.emit('event', 1);
    source.emit('event', 2);
    expect(await Promise.all(first)).toEqual(subscribers.map(() => ({ done: false, value: 1 })));
    for (const s of subscribers) expect(await s.next()).toEqual({ done: false, value: 2 });
  });

  it('lets a subscriber waiting for an event go at once, keeping nothing of it', async () => {
    const source = new EventEmitter();
    const fanOut = new EventFanOut<number>(source, 'event');
    const s = fanOut.subscribe();
    const waiting = s.next();
    await s.return!();
    await expect(waiting).resolves.toEqual({ done: true, value: undefined });
    expect(fanOut.size).toBe(0);
    source.emit('event', 3);
    expect(await s.next()).toEqual({ done: true, value: undefined });
  });

  it('holds nothing for a subscription that never started reading', async () => {
    const source = new EventEmitter();
    const fanOut = new EventFanOut<number>(source, 'event');
    fanOut.subscribe();
    const returned = fanOut.subscribe();
    await returned.return!();
    expect(fanOut.size).toBe(0);
    expect(await returned.next()).toEqual({ done: true, value: undefined });
    expect(fanOut.size).toBe(0);
  });

  it('ends a subscriber that stopped reading instead of buffering without bound', async () => {
    const source = new EventEmitter();
    const fanOut = new EventFanOut<number>(source, 'event');
    const stuck = fanOut.subscribe();
    void stuck.next();
    for (let i = 0; i < 2000; i++) source.emit('event', i);
    expect(fanOut.size).toBe(0);
    expect(await stuck.next()).toEqual({ done: true, value: undefined });
  });
});
