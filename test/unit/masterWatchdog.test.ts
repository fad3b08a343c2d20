import { HeartbeatJudge, MAX_LOOK_GAP_MS } from '../../gateway/masterWatchdog';

const HUNG_MS = 1000;
const master = (version: number, node = 'w1-0000000001') => ({ node, version });

/** Looks every `step` ms of ZooKeeper's clock from `from`, the master at `version` in each; what the judge said. */
function looks(judge: HeartbeatJudge, from: number, to: number, step: number, version: number, node?: string): boolean[] {
  const said: boolean[] = [];
  for (let clockMs = from; clockMs <= to; clockMs += step) said.push(judge.judge({ clockMs, master: master(version, node) }));
  return said;
}

describe("the master watchdog's judgement", () => {
  it('finds a master hung once its znode keeps one version for HUNG_MASTER_MS of looks', () => {
    const judge = new HeartbeatJudge(HUNG_MS);
    const said = looks(judge, 10_000, 10_000 + HUNG_MS + 250, 250, 7);
    expect(said.slice(0, 4)).toEqual([false, false, false, false]);
    expect(said[4]).toBe(true); // 1000 ms after the first look that saw version 7
    expect(said[5]).toBe(true);
  });

  it('never finds a master hung that keeps writing', () => {
    const judge = new HeartbeatJudge(HUNG_MS);
    for (let k = 0; k < 100; k++) expect(judge.judge({ clockMs: 10_000 + 250 * k, master: master(k) })).toBe(false);
  });

  it('starts over when looks are further apart than MAX_LOOK_GAP_MS: ZooKeeper or the gateway stalled, and the master may not have had a chance to write', () => {
    const judge = new HeartbeatJudge(HUNG_MS);
    expect(judge.judge({ clockMs: 10_000, master: master(3) })).toBe(false);
    expect(judge.judge({ clockMs: 10_000 + MAX_LOOK_GAP_MS + 1, master: master(3) })).toBe(false);
    const after = 10_000 + MAX_LOOK_GAP_MS + 1;
    expect(looks(judge, after + 250, after + HUNG_MS - 1, 250, 3).every((hung) => !hung)).toBe(true);
    expect(judge.judge({ clockMs: after + HUNG_MS, master: master(3) })).toBe(true);
  });

  it('starts over for a new master, a master gone, a failed look and a clock that went back', () => {
    const judge = new HeartbeatJudge(HUNG_MS);
    looks(judge, 0, 750, 250, 1);
    expect(judge.judge({ clockMs: 1000, master: master(1, 'w2-0000000002') })).toBe(false);
    expect(judge.judge({ clockMs: 1250, master: null })).toBe(false);
    expect(judge.judge({ clockMs: 1500, master: master(1, 'w2-0000000002') })).toBe(false);
    looks(judge, 1750, 2250, 250, 1, 'w2-0000000002');
    judge.reset();
    expect(looks(judge, 2500, 3250, 250, 1, 'w2-0000000002').some((hung) => hung)).toBe(false);
    expect(judge.judge({ clockMs: 3000, master: master(1, 'w2-0000000002') })).toBe(false);
    expect(judge.judge({ clockMs: 3999, master: master(1, 'w2-0000000002') })).toBe(false);
    expect(judge.judge({ clockMs: 4000, master: master(1, 'w2-0000000002') })).toBe(true);
  });
});
