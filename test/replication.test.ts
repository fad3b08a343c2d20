import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { encode } from '../schema';
import { Zk } from '../platform';
import { domainChecksums, PASSWORD, queryOne, TestCluster, waitUntil, WORKER_ENTRY, appliedSeqOf } from './support/cluster';
import { withRawRpc } from './support/load';

/** A worker's pino output, one JSON object per line (anything else skipped). */
function logLines(output: string): Array<Record<string, unknown>> {
  return output.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return []; // a line cut at the end of the captured output
    }
  });
}

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start();
});
afterAll(async () => {
  await cluster?.stop();
});

const appliedSeq = appliedSeqOf;

/** n writes, `concurrency` at a time: users, rides, and joins. */
async function writeMany(n: number, tag: string, concurrency = 8): Promise<void> {
  let next = 0;
  const users = Math.max(2, Math.floor(n / 20));
  for (let i = 0; i < users; i++)
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: `${tag}_${i}`, p: PASSWORD });
  const rideIds: number[] = [];
  const one = async (i: number) => {
    if (i % 4 === 3 && rideIds.length) {
      await cluster.data('mutation($r: Int!, $u: String!) { joinRide(rideId: $r, username: $u) { id } }', { r: rideIds[i % rideIds.length], u: `${tag}_${i % users}` });
    } else {
      const ts = new Date(Date.UTC(2031, 0, 1) + i * 60_000).toISOString();
      const r = await cluster.data<{ createRide: { id: number } }>(
        'mutation($by: String!, $ts: DateTimeISO!, $s: Int!, $d: Int!) { createRide(createdBy: $by, timestamp: $ts, source: $s, destination: $d) { id } }',
        { by: `${tag}_${i % users}`, ts, s: (i % 10) + 1, d: ((i + 1) % 10) + 1 },
      );
      rideIds.push(r.createRide.id);
    }
  };
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n - users; i = next++) await one(i);
    }),
  );
}

function startWorker(workerId: string): { child: ChildProcess; output: () => string } {
  let out = '';
  const child = spawn(process.execPath, [WORKER_ENTRY], { env: cluster.workerEnv(workerId), stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out };
}

function stopped(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

describe('the durable log', () => {
  it('brings a worker started after 1,000 writes to identical domain tables, and resumes it after SIGKILL without applying anything twice', async () => {
    await writeMany(1000, 'late');
    const master = await cluster.master();
    const masterDb = cluster.workerDatabaseUrl(master.id);
    const head = await appliedSeq(masterDb);
    expect(head).toBeGreaterThanOrEqual(1000);

    const late = startWorker('late_joiner');
    const lateDb = cluster.workerDatabaseUrl('late_joiner');
    try {
      await waitUntil('the late worker to reach the head', async () => (await appliedSeq(lateDb)) >= head, 60_000);
      expect(await domainChecksums(lateDb)).toEqual(await domainChecksums(masterDb));

      // Crash it, write more, restart it: it resumes from its own applied position.
      late.child.kill('SIGKILL');
      await stopped(late.child);
      const before = await appliedSeq(lateDb);
      await writeMany(100, 'after');
      const head2 = await appliedSeq(masterDb);

      const again = startWorker('late_joiner');
      try {
        await waitUntil('the restarted worker to reach the head', async () => (await appliedSeq(lateDb)) >= head2, 60_000);
        const resumed = logLines(again.output()).find((l) => l.msg === 'tailing the log');
        expect(resumed).toBeDefined();
        expect(resumed!.appliedSeq).toBe(before);
        expect(resumed!.offset).toBeGreaterThan(0);
        expect(await domainChecksums(lateDb)).toEqual(await domainChecksums(masterDb));
        // Every seq applied exactly once: one log row per seq, no gaps, no repeats.
        const log = await queryOne<{ n: string; max: string; distinct: string }>(
          lateDb,
          'SELECT count(*) AS n, max(seq) AS max, count(DISTINCT request_id) AS distinct FROM _dbaas_log',
        );
        expect(Number(log.n)).toBe(head2);
        expect(Number(log.max)).toBe(head2);
        expect(Number(log.distinct)).toBe(head2);
      } finally {
        again.child.kill('SIGTERM');
        await stopped(again.child);
      }
    } finally {
      late.child.kill('SIGKILL');
    }
  });
});

describe('poison messages', () => {
  it('are dead-lettered with their reason, answered with an error and never redelivered', async () => {
    await withRawRpc(cluster, async ({ channel, replyQueue: queue, replies }) => {
      await channel.purgeQueue(cluster.names.deadLetters);
      channel.sendToQueue(cluster.names.writeQ, Buffer.from('{"not": "a write'), { replyTo: queue, correlationId: 'w', persistent: true });
      const read = { id: 'r', op: 'rides', args: {}, minSeq: 'soon', consistency: 'strong' };
      channel.sendToQueue(cluster.names.readQ, Buffer.from(JSON.stringify({ reads: [read] })), { replyTo: queue, correlationId: 'r' });
      await waitUntil('two error replies', async () => replies.length === 2, 10_000);
      for (const r of replies) expect(r).toMatchObject({ ok: false, error: { code: 'BAD_USER_INPUT' } });
      expect(replies.map((r) => r.id).sort()).toEqual(['r', 'w']);

      const dead: Array<{ reason: string; queue: string; body: string }> = [];
      await waitUntil(
        'two dead letters',
        async () => {
          const msg = await channel.get(cluster.names.deadLetters, { noAck: true });
          if (msg) dead.push({ reason: String(msg.properties.headers?.['x-reason']), queue: String(msg.properties.headers?.['x-original-queue']), body: msg.content.toString() });
          return dead.length === 2;
        },
        10_000,
      );
      expect(dead.map((d) => d.queue).sort()).toEqual([cluster.names.readQ, cluster.names.writeQ].sort());
      expect(dead.find((d) => d.queue === cluster.names.writeQ)).toMatchObject({ body: '{"not": "a write', reason: expect.stringMatching(/not JSON/) });
      expect(dead.find((d) => d.queue === cluster.names.readQ)?.reason).toMatch(/minSeq/);
    });
    // Both workers are still serving.
    await cluster.waitHealthy();
    expect(await cluster.data('{ rideCount }')).toMatchObject({ rideCount: expect.any(Number) });
  });
});

describe('exactly-once writes', () => {
  it('gives one effect and the same result when the same write request id is delivered twice', async () => {
    await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'twice', p: PASSWORD });
    const { rideCount: before } = await cluster.data<{ rideCount: number }>('{ rideCount }');

    await withRawRpc(cluster, async ({ channel, replyQueue: queue, replies }) => {
      const request = {
        requestId: randomUUID(),
        op: 'createRide',
        args: { createdBy: 'twice', timestamp: '2032-02-02T02:02:02.000Z', source: 1, destination: 5 },
      };
      for (let i = 0; i < 2; i++) channel.sendToQueue(cluster.names.writeQ, encode({ writes: [request] }), { replyTo: queue });
      await waitUntil('two replies', async () => replies.length === 2, 10_000);
      expect(replies[0]).toMatchObject({ ok: true });
      expect(replies[1].ok && replies[1].seq).toBe(replies[0].ok && replies[0].seq);
      expect(replies[1].ok && replies[1].result).toEqual(replies[0].ok && replies[0].result);
    });
    const after = await cluster.data<{ rideCount: number; rides: unknown[] }>('{ rideCount rides(source: 1, destination: 5) { id } }');
    expect(after.rideCount).toBe(before + 1);
  });
});

// Last in this file: it stops the gateway, and with it every worker.
describe('a worker that starts when no master is left', () => {
  it('applies the log to its end before it serves reads (docs/contract.md, guarantee 6)', async () => {
    await writeMany(200, 'nomaster');
    const head = await appliedSeq(cluster.workerDatabaseUrl((await cluster.master()).id));
    await cluster.stopGateway();
    // A worker the gateway had to kill would stay registered until its session expires.
    const zk = await Zk.connect(cluster.config.zkHosts, 6000);
    try {
      await waitUntil('no worker registered', async () => (await zk.getChildren(cluster.names.zkWorkers)).length === 0, 30_000);
    } finally {
      zk.close();
    }
    const alone = startWorker('no_master_left');
    try {
      const serving = () => logLines(alone.output()).find((l) => l.msg === 'serving reads');
      await waitUntil('the worker to serve reads', async () => serving() !== undefined, 60_000);
      // No master advertised a position, so a marker of its own ended the catch-up.
      expect(logLines(alone.output()).some((l) => l.msg === 'no master: catching up to a marker of its own at the end of the log')).toBe(true);
      expect(serving()?.appliedSeq).toBeGreaterThanOrEqual(head);
    } finally {
      alone.child.kill('SIGKILL');
      await stopped(alone.child);
    }
  });
});
