import { spawn } from 'node:child_process';
import { cpuMs, pidsNamed, withCpuSplit } from '../../bench/lib';

/** Keeps this process's CPU busy for `ms` of wall time. */
const burn = (ms: number) => {
  const until = performance.now() + ms;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  return x;
};

describe("the benchmark's CPU split", () => {
  it("reads a process's CPU time from /proc and finds processes by command", () => {
    const before = cpuMs(process.pid);
    burn(200);
    expect(cpuMs(process.pid) - before).toBeGreaterThanOrEqual(100);
    expect(pidsNamed('node')).toContain(process.pid);
  });

  it('counts a process that is gone as 0, not as an error', async () => {
    const child = spawn(process.execPath, ['-e', '0']);
    const pid = child.pid!;
    await new Promise((resolve) => child.once('exit', resolve));
    await new Promise((resolve) => setTimeout(resolve, 50)); // reaped
    expect(cpuMs(pid)).toBe(0);
  });

  it("divides each group's CPU by the requests answered, and charges an idle group next to nothing", async () => {
    const idle = spawn(process.execPath, ['-e', 'console.log("ready"); setTimeout(() => {}, 10_000)']);
    await new Promise((resolve) => idle.stdout.once('data', resolve)); // its start-up is over
    try {
      const groups = async () => ({ busy: [process.pid], idle: [idle.pid!] });
      const split = await withCpuSplit(groups, async () => {
        burn(300);
        return { rps: 100, requests: 10, p50: 1, p99: 2, errors: 0 };
      });
      // ~300 ms of CPU over 10 requests: ~30 ms each (the scheduler may take some).
      expect(split.cpu.busy).toBeGreaterThan(15);
      expect(split.cpu.busy).toBeLessThan(45);
      expect(split.cpu.idle).toBeLessThan(1);
      expect(split.coresBusy).toBeGreaterThan(0.5);
      expect(split.requests).toBe(10);
    } finally {
      idle.kill();
    }
  });
});
