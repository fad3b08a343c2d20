import { LeaderLease } from '../../worker/lease';
import { leaseTimings } from '../../schema';

/** A lease on a clock the test moves, with renewals (conditional writes) the test answers. */
function setup() {
  let now = 0;
  let wall = 1_000_000;
  const reads: Array<{ resolve(written: boolean): void; reject(err: Error): void }> = [];
  const lost: string[] = [];
  const lease = new LeaderLease(
    { prove: () => new Promise<boolean>((resolve, reject) => reads.push({ resolve, reject })) },
    { leaseMs: 4000, checkEveryMs: 1_000_000, onLost: (reason) => lost.push(reason), now: () => now, wallNow: () => wall },
  );
  // Both clocks move together unless a test moves the wall clock alone.
  const at = (t: number) => {
    wall += t - now;
    now = t;
  };
  return { lease, reads, lost, at, suspendFor: (ms: number) => (wall += ms) };
}

const settle = () => new Promise((r) => setImmediate(r));
const waitFor = async (done: () => boolean) => {
  while (!done()) await new Promise((r) => setTimeout(r, 10));
};

describe('the master lease', () => {
  it('runs from the start of the last successful renewal, not its end', async () => {
    const { lease, reads, at } = setup();
    at(100);
    const started = lease.start();
    at(3000); // the write took long: the lease still counts from 100
    reads[0].resolve(true);
    await started;
    lease.stop();
    expect(lease.valid).toBe(true);
    at(4099);
    expect(lease.valid).toBe(true);
    at(4100);
    expect(lease.valid).toBe(false);
  });

  it('is lost for good when its candidacy is gone (the renewal found no znode to check)', async () => {
    const { lease, reads, lost } = setup();
    const started = lease.start();
    reads[0].resolve(false);
    await started;
    expect(lease.valid).toBe(false);
    expect(lost).toEqual([expect.stringMatching(/candidacy is gone/)]);
  });

  it('keeps counting from the last success while renewals fail, then lapses', async () => {
    const { lease, reads, lost, at } = setup();
    at(0);
    const started = lease.start();
    reads[0].resolve(true);
    await started;
    lease.stop();
    const tick = () => (lease as unknown as { tick(): Promise<void> }).tick();
    at(1000);
    const failing = tick();
    reads[1].reject(new Error('CONNECTION_LOSS'));
    await failing;
    expect(lease.valid).toBe(true);
    at(4000);
    expect(lease.valid).toBe(false);
    await tick();
    expect(lost).toEqual([expect.stringMatching(/lapsed.*CONNECTION_LOSS/)]);
  });

  it('lapses when ZooKeeper stops answering, and says why', async () => {
    const { lease, reads, lost, at } = setup();
    const started = lease.start();
    reads[0].resolve(true);
    await started;
    lease.stop();
    // A frozen process wakes 20 s later: whatever it does first, the lease is over.
    at(20_000);
    expect(lease.valid).toBe(false);
    await (lease as unknown as { tick(): Promise<void> }).tick();
    expect(lost).toEqual([expect.stringMatching(/lease lapsed/)]);
    expect(reads).toHaveLength(1);
    await settle();
  });

  it('lapses when the machine was suspended: the wall clock ran on while the monotonic one stood', async () => {
    const { lease, reads, suspendFor } = setup();
    const started = lease.start();
    reads[0].resolve(true);
    await started;
    lease.stop();
    expect(lease.valid).toBe(true);
    suspendFor(4000);
    expect(lease.valid).toBe(false);
  });

  it('tries a first renewal that failed again, for up to a lease', async () => {
    const { lease, reads, at } = setup();
    const started = lease.start();
    reads[0].reject(new Error('CONNECTION_LOSS'));
    await waitFor(() => reads.length === 2);
    at(200);
    reads[1].resolve(true);
    await started;
    lease.stop();
    expect(lease.valid).toBe(true);
    expect(lease.remainingMs).toBe(3800);
  });

  it('gives up on first renewals that fail for a whole lease', async () => {
    const { lease, reads, at } = setup();
    const started = lease.start();
    at(4000);
    reads[0].reject(new Error('CONNECTION_LOSS'));
    await expect(started).rejects.toThrow('CONNECTION_LOSS');
    expect(lease.valid).toBe(false);
  });

  it('takes two thirds of the session timeout, renewed four times per lease', () => {
    expect(leaseTimings(6000)).toEqual({ leaseMs: 4000, checkEveryMs: 1000 });
  });
});
