import { spawn } from 'node:child_process';
import { domainChecksums, PASSWORD, queryOne, TestCluster, waitUntil, WORKER_ENTRY, appliedSeqOf } from './support/cluster';

let cluster: TestCluster;
beforeAll(async () => {
  // A log of ~60 kB: a few hundred entries, so it is trimmed long before the test ends.
  cluster = await TestCluster.start({ LOG_RETENTION_BYTES: '60000' });
});
afterAll(async () => {
  await cluster?.stop();
});

const appliedSeq = appliedSeqOf;

describe('log retention and snapshots', () => {
  it('bootstraps a new worker from a peer snapshot once the log no longer reaches back, then follows the log', async () => {
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'snap', p: PASSWORD });
    const write = (i: number) =>
      cluster.data('mutation($ts: DateTimeISO!) { createRide(createdBy: "snap", timestamp: $ts, source: 3, destination: 5) { id } }', {
        ts: new Date(Date.UTC(2031, 5, 1) + i * 1000).toISOString(),
      });
    for (let i = 0; i < 1500; i += 20) await Promise.all(Array.from({ length: 20 }, (_, k) => write(i + k)));

    let out = '';
    const child = spawn(process.execPath, [WORKER_ENTRY], { env: cluster.workerEnv('snapshot_joiner'), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const masterDb = cluster.workerDatabaseUrl((await cluster.master()).id);
      const joinerDb = cluster.workerDatabaseUrl('snapshot_joiner');
      await waitUntil('the joiner at the head', async () => (await appliedSeq(joinerDb)) >= (await appliedSeq(masterDb)), 60_000);
      expect(out).toMatch(/bootstrapping from a snapshot/);
      expect(out).toMatch(/snapshot loaded/);
      expect(await domainChecksums(joinerDb)).toEqual(await domainChecksums(masterDb));

      // It keeps following the log after the snapshot.
      for (let i = 1500; i < 1520; i++) await write(i);
      await waitUntil('the joiner follows new writes', async () => (await appliedSeq(joinerDb)) >= (await appliedSeq(masterDb)), 30_000);
      expect(await domainChecksums(joinerDb)).toEqual(await domainChecksums(masterDb));
    } finally {
      child.kill('SIGTERM');
    }
  });
});
