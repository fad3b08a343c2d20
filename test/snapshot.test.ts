import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { Client } from 'pg';
import { domainChecksums, PASSWORD, TestCluster, waitUntil, WORKER_ENTRY, appliedSeqOf } from './support/cluster';

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
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
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

  it('loads a snapshot larger than its own heap, after a receiver that died mid-transfer, through a pause of its own', async () => {
    // Seeded with SQL into every worker's database alike (growing through the write path is
    // bench:scale's job): ~90 MB of rows, against a receiver with a 48 MB heap.
    const workers = await cluster.workers();
    for (const w of workers) await seedUsers(cluster.workerDatabaseUrl(w.id), 400_000);

    const dying = startJoiner('snapshot_dies');
    await waitUntil('the first joiner loading', async () => /loading a snapshot/.test(dying.output()), 60_000);
    dying.child.kill('SIGKILL');

    const small = startJoiner('snapshot_small_heap', ['--max-old-space-size=48']);
    try {
      // A receiver that stops applying for a while (here: stopped) holds its sender back;
      // the transfer goes on once it resumes, without starting over.
      await waitUntil('the small-heap joiner loading', async () => /loading a snapshot/.test(small.output()), 60_000);
      small.child.kill('SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, 3000));
      small.child.kill('SIGCONT');
      const masterDb = cluster.workerDatabaseUrl((await cluster.master()).id);
      const joinerDb = cluster.workerDatabaseUrl('snapshot_small_heap');
      await waitUntil(`the small-heap joiner at the head (${small.output().slice(-2000)})`, async () => (await appliedSeq(joinerDb)) >= (await appliedSeq(masterDb)), 120_000);
      expect(small.output()).toMatch(/snapshot loaded/);
      expect(small.output().match(/loading a snapshot/g)).toHaveLength(1);
      expect(await domainChecksums(joinerDb)).toEqual(await domainChecksums(masterDb));
      // The sender of the abandoned transfer noticed its receiver was gone and let go.
      expect(fs.readFileSync(cluster.logFile, 'utf8')).toMatch(/the snapshot's receiver is gone/);
    } finally {
      small.child.kill('SIGTERM');
    }
  });
});

function startJoiner(id: string, nodeOptions: string[] = []): { child: ChildProcess; output: () => string } {
  let out = '';
  const child = spawn(process.execPath, [...nodeOptions, WORKER_ENTRY], { env: cluster.workerEnv(id), stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out };
}

async function seedUsers(databaseUrl: string, count: number): Promise<void> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO users (username, password_hash, created_at)
       SELECT 'bulk_' || i, repeat(md5(i::text), 6), timestamptz '2030-01-01' + i * interval '1 second' FROM generate_series(1, $1) i`,
      [count],
    );
  } finally {
    await client.end();
  }
}
