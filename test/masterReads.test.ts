import { PASSWORD, TestCluster, waitUntil } from './support/cluster';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start({ MIN_SLAVES: '0' });
  await cluster.data('mutation($u: String!, $p: String!) { createUser(username: $u, password: $p) { username } }', { u: 'asha', p: PASSWORD });
});
afterAll(async () => {
  await cluster?.stop();
});

describe('with no slave serving', () => {
  it('the master answers reads, with read-your-writes, and /healthz says degraded; a new slave takes them back', async () => {
    const master = await cluster.master();
    await cluster.admin('mutation { scaleSlaves(count: 0) { desiredSlaves } }');
    await waitUntil('the slave retired', async () => (await cluster.workers()).length === 1, 30_000);

    const written = await cluster.gql<{ createRide: { id: number } }>(
      'mutation { createRide(createdBy: "asha", timestamp: "2032-02-02T10:00:00Z", source: 20, destination: 21) { id } }',
    );
    expect(written.errors).toBeUndefined();
    const read = await waitUntil(
      'a read answered',
      async () => {
        const r = await cluster.gql<{ ride: { id: number } | null }>(`{ ride(id: ${written.data!.createRide.id}) { id } }`);
        return r.errors ? undefined : r;
      },
      10_000,
    );
    expect(read.data?.ride?.id).toBe(written.data!.createRide.id);
    expect(read.extensions?.dbaas?.workerId).toBe(master.id);
    const health = await fetch(`${cluster.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'degraded', reasons: ['no slave serving reads'] });

    await cluster.admin('mutation { scaleSlaves(count: 1) { desiredSlaves } }');
    await cluster.waitHealthy();
    await waitUntil(
      'reads served by the slave again',
      async () => {
        const r = await cluster.gql('{ rideCount }');
        return r.extensions?.dbaas?.workerId !== master.id;
      },
      10_000,
    );
  });
});
