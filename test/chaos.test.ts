import { FAULT_KINDS, formatSummary, runChaos } from './support/chaos';

describe('the chaos run (short)', () => {
  it('keeps every acknowledged write, applies none twice and reads every client its own writes through every kind of fault', async () => {
    const summary = await runChaos({ seconds: 30, faultEverySeconds: 3, faults: FAULT_KINDS, clients: 4 });
    process.stdout.write(`${formatSummary(summary)}\n`);
    expect(summary.violations).toEqual([]);
    for (const kind of FAULT_KINDS) expect(summary.faults[kind]).toBeGreaterThanOrEqual(1);
    expect(summary.writesAcknowledged).toBeGreaterThan(100);
    expect(summary.readsOk).toBeGreaterThan(100);
  });
});
