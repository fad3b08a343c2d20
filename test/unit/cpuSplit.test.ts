import { spawn } from 'node:child_process';
import { cpuMs, pidsNamed, withCpuSplit } from '../../bench/lib';

/** Keeps this process busy until it has used `ms` more of CPU (not of wall time: a loaded machine may run it slower). */
const burn = (ms: number) => {
  const cpu = () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  };
  const until = cpu() + ms;
  let x = 0;
  while (cpu() < until) x += Math.sqrt(x + 1);
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
    await new Promise((resolve) => idle.stdout.once('data', resolve));
    // What is left of its start-up (V8's background compiles, a first GC) runs on after its
    // first output; on a loaded machine that spilled into the measured window.
    await new Promise((resolve) => setTimeout(resolve, 300));
    try {
      const groups = async () => ({ busy: [process.pid], idle: [idle.pid!] });
      const split = await withCpuSplit(groups, async () => {
        burn(300);
        return { rps: 100, requests: 100, p50: 1, p99: 2, errors: 0 };
      });
      // 300 ms of CPU over 100 requests: 3 ms each, give or take the kernel's clock tick.
      expect(split.cpu.busy).toBeGreaterThan(2.5);
      expect(split.cpu.busy).toBeLessThan(4);
      // At most a few ticks (10 ms each) of a resting node process, not the busy one's 300 ms.
      expect(split.cpu.idle).toBeLessThanOrEqual(0.5);
      // One process busy on one core, however loaded the machine.
      expect(split.coresBusy).toBeGreaterThan(0);
      expect(split.coresBusy).toBeLessThan(1.2);
      expect(split.requests).toBe(100);
    } finally {
      idle.kill();
    }
  });
});
