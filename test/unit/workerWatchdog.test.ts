import { HeartbeatJudge, MAX_LOOK_GAP_MS, VersionAges } from '../../gateway/workerWatchdog';
import { releaseAfterMs } from '../../schema';
import { defaultHungWorkerMs, loadConfig, zkServerCount } from '../../platform/config';

const HUNG_MS = 1000;

/** Looks every `step` ms of ZooKeeper's clock from `from` to `to`, the znode at `version` in each; what the judge said. */
function looks(judge: HeartbeatJudge, from: number, to: number, step: number, version: number): boolean[] {
  const said: boolean[] = [];
  for (let clockMs = from; clockMs <= to; clockMs += step) said.push(judge.judge(clockMs, version));
  return said;
}

describe("the worker watchdog's judgement", () => {
  it('finds a worker hung once its znode keeps one version through HUNG_WORKER_MS of looks', () => {
    const judge = new HeartbeatJudge(HUNG_MS);
    const said = looks(judge, 10_000, 10_000 + HUNG_MS + 250, 250, 7);
    expect(said.slice(0, 4)).toEqual([false, false, false, false]);
    expect(said[4]).toBe(true); // 1000 ms after the first look that saw version 7
    expect(said[5]).toBe(true);
  });

  it('never finds a worker hung that keeps writing', () => {
    const judge = new HeartbeatJudge(HUNG_MS);
    for (let k = 0; k < 100; k++) expect(judge.judge(10_000 + 250 * k, k)).toBe(false);
  });

  it('starts over when looks are further apart than MAX_LOOK_GAP_MS: ZooKeeper or the gateway stalled, and the worker may not have had a chance to write', () => {
    const judge = new HeartbeatJudge(HUNG_MS);
    expect(judge.judge(10_000, 3)).toBe(false);
    const after = 10_000 + MAX_LOOK_GAP_MS + 1;
    expect(judge.judge(after, 3)).toBe(false);
    expect(looks(judge, after + 250, after + HUNG_MS - 1, 250, 3).some((hung) => hung)).toBe(false);
    expect(judge.judge(after + HUNG_MS, 3)).toBe(true);
  });

  it("starts over when the znode is gone or ZooKeeper's clock went back", () => {
    const judge = new HeartbeatJudge(HUNG_MS);
    looks(judge, 0, 750, 250, 1);
    expect(judge.judge(1000, null)).toBe(false);
    expect(looks(judge, 1250, 2000, 250, 1).some((hung) => hung)).toBe(false);
    expect(judge.judge(2250, 1)).toBe(true);
    expect(judge.judge(1500, 1)).toBe(false); // back before the last look
    expect(judge.judge(2499, 1)).toBe(false);
    expect(judge.judge(2500, 1)).toBe(true);
  });
});

describe("the age of a master's znode version, for its lease", () => {
  it('counts from the first read that returned the version, across any gap between reads', () => {
    const ages = new VersionAges();
    expect(ages.observe(new Map([['m', 5]]), 1000).get('m')).toBe(0);
    expect(ages.observe(new Map([['m', 5]]), 1250).get('m')).toBe(250);
    // This gateway stalled for 10 s: the version was kept all the same.
    expect(ages.observe(new Map([['m', 5]]), 11_250).get('m')).toBe(10_250);
  });

  it('starts over with every new version, and forgets a znode gone or no longer watched', () => {
    const ages = new VersionAges();
    ages.observe(
      new Map([
        ['m', 5],
        ['s', 1],
      ]),
      1000,
    );
    expect(
      ages.observe(
        new Map([
          ['m', 6],
          ['s', 1],
        ]),
        6000,
      ),
    ).toEqual(
      new Map([
        ['m', 0],
        ['s', 5000],
      ]),
    );
    expect(ages.observe(new Map([['m', null]]), 7000).get('m')).toBeNull();
    expect(
      ages.observe(
        new Map([
          ['m', 6],
          ['s', 1],
        ]),
        8000,
      ),
    ).toEqual(
      new Map([
        ['m', 0],
        ['s', 0],
      ]),
    );
  });

  it("releases a master's candidacy an eighth past its lease, never sooner", () => {
    expect(releaseAfterMs(4000)).toBe(4500);
    expect(releaseAfterMs(1)).toBeGreaterThan(1);
  });
});

describe('HUNG_WORKER_MS', () => {
  it('defaults to 1 s with one ZooKeeper server, and with an ensemble to past the time a healthy worker may take to move its session', () => {
    expect(zkServerCount('127.0.0.1:2181')).toBe(1);
    expect(zkServerCount('zk-0:2181,zk-1:2181,zk-2:2181/ridedb')).toBe(3);
    expect(defaultHungWorkerMs(6000, 1)).toBe(1000);
    expect(defaultHungWorkerMs(6000, 3)).toBe(2500); // a third of the session: ping and connect timeouts alike
    expect(defaultHungWorkerMs(6000, 2)).toBe(3500); // half the session: the connect timeout
    expect(defaultHungWorkerMs(6000, 5)).toBe(2500); // a third: the ping timeout
    expect(defaultHungWorkerMs(1000, 3)).toBe(1000);
    expect(loadConfig({ ZK_HOSTS: 'a:1,b:1,c:1' }).hungWorkerMs).toBe(2500);
    expect(loadConfig({ HUNG_WORKER_MS: '0' }).hungWorkerMs).toBe(0);
  });

  it('refuses a bound under 1 s, where a few missed beats would restart a worker', () => {
    expect(() => loadConfig({ HUNG_WORKER_MS: '500' })).toThrow(/HUNG_WORKER_MS must be 0 \(off\) or at least 1000/);
  });
});
