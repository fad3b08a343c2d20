import { PASSWORD, queryOne, TestCluster, waitUntil } from './support/cluster';
import { writeRidesFor } from './support/load';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start();
  await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'driver', p: PASSWORD });
});
afterAll(async () => {
  await cluster?.stop();
});

const position = async (workerId: string) => {
  const row = await queryOne<{ applied_seq: string; stream_offset: string }>(cluster.workerDatabaseUrl(workerId), 'SELECT applied_seq, stream_offset FROM _dbaas_state');
  return { appliedSeq: Number(row.applied_seq), streamOffset: Number(row.stream_offset) };
};

describe('a master', () => {
  it('records its place in the log as it writes, so after a crash it resumes near the end instead of re-reading its whole term', async () => {
    const master = await cluster.master();
    const before = await position(master.id);
    const { acknowledged } = await writeRidesFor(cluster, { createdBy: 'driver', source: 13, destination: 14, ms: 2000, writers: 4, epochYear: 2039 });
    expect(acknowledged.length).toBeGreaterThan(50);
    const after = await waitUntil(
      'the stream offset advanced with the writes',
      async () => {
        const p = await position(master.id);
        return p.streamOffset > before.streamOffset + 10 ? p : undefined;
      },
      10_000,
    );
    expect(after.appliedSeq).toBeGreaterThan(before.appliedSeq);

    await cluster.admin('mutation { crashMaster { id } }');
    await waitUntil(
      'the crashed master back as a caught-up slave',
      async () => {
        const ws = await cluster.workers();
        const back = ws.find((w) => w.id === master.id);
        return back && back.pid !== master.pid && back.role === 'SLAVE' && ws.length === 2;
      },
      30_000,
    );
    // It read the log from its recorded offset: everything it had, it kept; nothing twice.
    const rides = await cluster.allRides(13, 14, false);
    const stored = new Map(rides.map((r) => [r.id, r.timestamp]));
    for (const w of acknowledged) expect(stored.get(w.id)).toBe(w.timestamp);
    expect(new Set(rides.map((r) => r.timestamp)).size).toBe(rides.length);
  });
});
