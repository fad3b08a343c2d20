import { spawn } from 'node:child_process';
import { isSurelyGone, ownProcessIdentity, processStat } from '../../platform/processIdentity';

describe("a gateway's process identity", () => {
  const own = ownProcessIdentity()!;

  it('is judged gone only when it surely is: its pid free, or another process now', async () => {
    expect(isSurelyGone(own)).toBe(false);
    const child = spawn('true');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const pid = child.pid!;
    const startTicks = processStat(pid)?.startTicks ?? 0;
    await exited;
    expect(isSurelyGone({ ...own, pid, startTicks })).toBe(true);
    // This very pid started at another time: another process has it now.
    expect(isSurelyGone({ ...own, startTicks: own.startTicks - 1 })).toBe(true);
  });

  it('is never judged gone from another machine, boot or pid namespace (a container), where its pid means nothing here', () => {
    const gone = { ...own, pid: 2 ** 22 + 1 };
    expect(isSurelyGone(gone)).toBe(true);
    expect(isSurelyGone({ ...gone, bootId: 'another-boot' })).toBe(false);
    expect(isSurelyGone({ ...gone, pidNamespace: 'pid:[1]' })).toBe(false);
  });
});
