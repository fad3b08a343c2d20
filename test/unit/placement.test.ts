import { placeWorker, slaveToMove } from '../../gateway/runtimes/placement';

const placed = (entries: Record<string, string>) => new Map(Object.entries(entries));

describe('placing workers on Docker hosts', () => {
  it('spreads new workers over the hosts, fewest first, ties in DOCKER_HOSTS order', () => {
    expect(placeWorker(['a', 'b'], placed({}), 'w1', null)).toBe('a');
    expect(placeWorker(['a', 'b'], placed({ w1: 'a' }), 'w2', null)).toBe('b');
    expect(placeWorker(['a', 'b'], placed({ w1: 'a', w2: 'b' }), 'w3', null)).toBe('a');
    expect(placeWorker(['a', 'b', 'c'], placed({ w1: 'a', w2: 'a', w3: 'b' }), 'w4', null)).toBe('c');
  });

  it('puts a restarted worker back where its volume is, unless that host is down', () => {
    expect(placeWorker(['a', 'b'], placed({ w1: 'a', w2: 'a' }), 'w3', 'a')).toBe('a');
    expect(placeWorker(['b'], placed({ w2: 'b' }), 'w1', 'a')).toBe('b');
    expect(placeWorker([], placed({}), 'w1', 'a')).toBeNull();
  });

  it('gives the master a slave on another host whenever two hosts are up, placing one worker after another', () => {
    for (let workers = 2; workers <= 6; workers++) {
      const where = new Map<string, string>();
      for (let i = 0; i < workers; i++) where.set(`w${i}`, placeWorker(['a', 'b'], where, `w${i}`, null) as string);
      for (const master of where.keys()) expect(slaveToMove(['a', 'b'], where, master)).toBeNull();
      for (const master of where.keys()) expect([...where].some(([id, host]) => id !== master && host !== where.get(master))).toBe(true);
    }
  });

  it('moves one slave when master and slaves share a host and another is empty (a lost host came back)', () => {
    expect(slaveToMove(['a', 'b'], placed({ m: 'a', s1: 'a', s2: 'a' }), 'm')).toBe('s1');
    expect(slaveToMove(['a'], placed({ m: 'a', s1: 'a' }), 'm')).toBeNull();
    expect(slaveToMove(['a', 'b'], placed({ m: 'a' }), 'm')).toBeNull();
    expect(slaveToMove(['a', 'b'], placed({ m: 'a', s1: 'a' }), null)).toBeNull();
  });
});
