import { spawn } from 'node:child_process';
import { isAlive } from '../../gateway/runtimes/process';

describe('whether a worker process runs', () => {
  it('is false for a zombie: dead, but not yet reaped by its parent', async () => {
    // sh starts `sleep 0` in the background, prints its pid and becomes `sleep 5`, which
    // never reaps it: the background child exits and stays a zombie.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const zombie = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()))));
      await new Promise((r) => setTimeout(r, 300));
      expect(isAlive(parent.pid!)).toBe(true);
      expect(isAlive(zombie)).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('is false for a pid that no process has', () => {
    expect(isAlive(2 ** 22 + 1)).toBe(false);
  });
});
