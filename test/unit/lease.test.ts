import { LeaderLease, leaseTimings } from '../../worker/lease';

/** A lease on a clock the test moves, with epoch reads the test answers. */
function setup(epoch = 3) {
  let now = 0;
  const reads: Array<{ resolve(epoch: number): void; reject(err: Error): void }> = [];
  const lost: string[] = [];
  const lease = new LeaderLease(
    { readEpoch: () => new Promise<number>((resolve, reject) => reads.push({ resolve, reject })) },
    { epoch, leaseMs: 4000, checkEveryMs: 1_000_000, onLost: (reason) => lost.push(reason), now: () => now },
  );
  return { lease, reads, lost, at: (t: number) => (now = t) };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('the master lease', () => {
  it('runs from the start of the last successful epoch read, not its end', async () => {
    const { lease, reads, at } = setup();
    at(100);
    const started = lease.start();
    at(3000); // the read took long: the lease still counts from 100
    reads[0].resolve(3);
    await started;
    lease.stop();
    expect(lease.valid).toBe(true);
    at(4099);
    expect(lease.valid).toBe(true);
    at(4100);
    expect(lease.valid).toBe(false);
  });

  it('is lost for good when a newer epoch appears', async () => {
    const { lease, reads, lost } = setup(3);
    const started = lease.start();
    reads[0].resolve(4);
    await started;
    expect(lease.valid).toBe(false);
    expect(lost).toEqual([expect.stringMatching(/newer epoch \(4\)/)]);
  });

  it('lapses when ZooKeeper stops answering, and says why', async () => {
    const { lease, reads, lost, at } = setup();
    const started = lease.start();
    reads[0].resolve(3);
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

  it('takes two thirds of the session timeout, read four times per lease', () => {
    expect(leaseTimings(6000)).toEqual({ leaseMs: 4000, checkEveryMs: 1000 });
  });
});
