import os from 'node:os';
import { spawn, execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { PASSWORD, TestCluster, waitUntil } from './support/cluster';
import { untilSubscriptions } from './support/events';

const CLI = path.resolve(__dirname, '../dist/cli/ridedb.js');
const run = promisify(execFile);

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start();
});
afterAll(async () => {
  await cluster?.stop();
});

const cli = (...args: string[]) => run(process.execPath, [CLI, '--url', cluster.url, '--token', cluster.config.adminToken, ...args]);

describe('the ridedb command line', () => {
  it('shows status and workers, as text and as JSON', async () => {
    const status = await cli('status');
    expect(status.stdout).toMatch(/epoch \d+, log at seq \d+, runtime process, 1\/1 slaves/);
    expect(status.stdout).toMatch(/MASTER/);
    const workers = JSON.parse((await cli('workers', '--json')).stdout) as Array<{ role: string; pid: number; host: string }>;
    expect(workers.map((w) => w.role).sort()).toEqual(['MASTER', 'SLAVE']);
    expect(workers.map((w) => w.host)).toEqual([os.hostname(), os.hostname()]);
    expect((await cli('workers')).stdout).toContain(`on ${os.hostname()}`);
  });

  it('finds the gateway by PORT when neither --url nor RIDEDB_URL is given, and RIDEDB_URL wins over PORT', async () => {
    const { RIDEDB_URL: _unset, ...shell } = process.env;
    const env = { ...shell, PORT: String(cluster.config.port) };
    const { stdout } = await run(process.execPath, [CLI, 'workers', '--json'], { env });
    const pids = (JSON.parse(stdout) as Array<{ pid: number }>).map((w) => w.pid);
    expect(pids).toEqual((await cluster.workers()).map((w) => w.pid));
    await expect(run(process.execPath, [CLI, 'status'], { env: { ...env, RIDEDB_URL: 'http://127.0.0.1:9' } })).rejects.toMatchObject({
      stderr: expect.stringMatching(/cannot reach the gateway at http:\/\/127\.0\.0\.1:9/),
    });
  });

  it('says so and prints the current state when events without --follow sees no event', async () => {
    await cluster.waitHealthy();
    const { stdout } = await cli('events');
    expect(stdout).toMatch(/^no cluster events within 1000 ms/);
    expect(stdout).toMatch(/epoch \d+, log at seq \d+/);
    expect(stdout).toMatch(/MASTER/);
    const json = await cli('events', '--json');
    expect(json.stdout).toBe('');
    expect(json.stderr).toMatch(/no cluster events/);
  });

  it('prints one line per event with events --follow while crash master runs in another shell', async () => {
    // The previous test's `events` has detached, so the one counted next is the follower.
    await untilSubscriptions(cluster.url, 0, true);
    const follower = spawn(process.execPath, [CLI, '--url', cluster.url, 'events', '--follow'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    follower.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await untilSubscriptions(cluster.url, 1);
      const crashed = await cli('crash', 'master');
      expect(crashed.stdout).toMatch(/^crashed master: /);
      await waitUntil('left, elected and joined lines', async () => /WORKER_LEFT/.test(out) && /LEADER_ELECTED/.test(out) && /WORKER_JOINED/.test(out), 30_000);
      const lines = out.trim().split('\n');
      for (const line of lines) expect(line).toMatch(/^\S+Z (WORKER_LEFT|WORKER_JOINED|LEADER_ELECTED|SCALED_UP|SCALED_DOWN)\s/);
      expect(lines.find((l) => l.includes('LEADER_ELECTED'))).toMatch(/epoch=\d+/);
    } finally {
      follower.kill('SIGINT');
    }
  });

  it('watches a route live with watch --route: the snapshot, then each change as a line', async () => {
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'watched', p: PASSWORD });
    const watcher = spawn(process.execPath, [CLI, '--url', cluster.url, 'watch', '--route', '31:32'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    watcher.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitUntil('the snapshot line', async () => / SNAPSHOT +0 rides/.test(out), 30_000);
      const { createRide } = await cluster.data<{ createRide: { id: number } }>(
        'mutation { createRide(createdBy: "watched", timestamp: "2041-02-03T04:05:06Z", source: 31, destination: 32) { id } }',
      );
      const line = await waitUntil('the change line', async () => out.split('\n').find((l) => l.includes('RIDE_CREATED')), 30_000);
      expect(line).toMatch(new RegExp(`^\\d+ \\S+Z RIDE_CREATED +ride=${createRide.id} 2041-02-03T04:05:06.000Z by=watched riders=0$`));
    } finally {
      watcher.kill('SIGINT');
    }
    await expect(run(process.execPath, [CLI, '--url', cluster.url, 'watch', '--route', 'nowhere'])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/--route SOURCE:DESTINATION/),
    });
  });

  it('scales and reports errors with a non-zero exit', async () => {
    await cluster.waitHealthy();
    expect((await cli('scale', '2')).stdout).toMatch(/desired slaves: 2 \(manual, until scale auto\)/);
    await waitUntil('two slaves', async () => (await cluster.workers()).filter((w) => w.role === 'SLAVE').length === 2, 30_000);
    expect(JSON.parse((await cli('scale', 'auto', '--json')).stdout)).toEqual({ desiredSlaves: 2, scalingMode: 'AUTOMATIC' });
    await expect(run(process.execPath, [CLI, '--url', cluster.url, 'scale', '3'])).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/FORBIDDEN/) });
    await expect(run(process.execPath, [CLI, '--url', 'http://127.0.0.1:9', 'status'])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/cannot reach the gateway/),
    });
  });
});
