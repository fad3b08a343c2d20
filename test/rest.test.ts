import { toOldTimestamp } from '../gateway/rest';
import { PASSWORD, TestCluster, waitUntil } from './support/cluster';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await TestCluster.start();
});
afterAll(async () => {
  await cluster?.stop();
});

async function call(method: string, path: string, body?: unknown, admin = false) {
  const res = await fetch(`${cluster.url}/api/v1${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(admin ? { authorization: `Bearer ${cluster.config.adminToken}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : null };
}

/** The original format, for a time `hours` from now (whole seconds). */
const oldTime = (hours: number) => toOldTimestamp(new Date(Math.floor(Date.now() / 1000) * 1000 + hours * 3_600_000).toISOString());

describe('the original RideShare REST API', () => {
  it('runs the old clients’ flow with the original status codes', async () => {
    expect((await call('GET', '/users')).status).toBe(204);
    expect(await call('PUT', '/users', { username: 'ravi', password: PASSWORD })).toEqual({ status: 201, body: {} });
    expect(await call('PUT', '/users', { username: 'asha', password: PASSWORD })).toEqual({ status: 201, body: {} });
    expect((await call('PUT', '/users', { username: 'asha', password: PASSWORD })).status).toBe(400);
    expect((await call('PUT', '/users', { username: 'bad name', password: PASSWORD })).status).toBe(400);
    expect((await call('PUT', '/users', { username: 'nopass', password: 'abc' })).status).toBe(400);
    expect(await call('GET', '/users')).toEqual({ status: 200, body: ['asha', 'ravi'] });

    const when = oldTime(5);
    const created = await call('POST', '/rides', { created_by: 'ravi', timestamp: when, source: 2, destination: 4 });
    expect(created.status).toBe(201);
    const rideId = (created.body as { rideId: number }).rideId;
    expect((await call('POST', '/rides', { created_by: 'nobody', timestamp: when, source: 2, destination: 4 })).status).toBe(400);
    expect((await call('POST', '/rides', { created_by: 'ravi', timestamp: '2026-01-01', source: 2, destination: 4 })).status).toBe(400);
    expect((await call('POST', '/rides', { created_by: 'ravi', timestamp: oldTime(-5), source: 2, destination: 4 })).status).toBe(201);

    expect(await call('GET', '/rides?source=2&destination=4')).toEqual({ status: 200, body: [{ rideId, username: 'ravi', timestamp: when }] });
    expect((await call('GET', '/rides?source=4&destination=2')).status).toBe(204);
    expect((await call('GET', '/rides?source=x&destination=2')).status).toBe(400);

    expect(await call('POST', `/rides/${rideId}`, { username: 'asha' })).toEqual({ status: 201, body: {} });
    expect((await call('POST', `/rides/${rideId}`, { username: 'ghost' })).status).toBe(400);
    expect(await call('GET', `/rides/${rideId}`)).toEqual({
      status: 200,
      body: { rideId, created_by: 'ravi', users: ['asha'], timestamp: when, source: 2, destination: 4 },
    });
    expect((await call('GET', '/rides/999999')).status).toBe(204);
    expect(await call('GET', '/rides/count')).toEqual({ status: 200, body: [2] });

    expect(await call('DELETE', `/rides/${rideId}`)).toEqual({ status: 200, body: {} });
    expect((await call('DELETE', `/rides/${rideId}`)).status).toBe(400);
    expect(await call('DELETE', '/users/asha')).toEqual({ status: 200, body: {} });
    expect((await call('DELETE', '/users/asha')).status).toBe(400);
  });

  it('answers 405 to a wrong method', async () => {
    expect((await call('PATCH', '/users')).status).toBe(405);
    expect((await call('DELETE', '/rides')).status).toBe(405);
    expect((await call('GET', '/db/clear')).status).toBe(405);
    expect((await call('POST', '/worker/list')).status).toBe(405);
  });

  it('counts requests, lists workers and needs the token for admin endpoints', async () => {
    expect((await call('DELETE', '/_count')).status).toBe(403);
    expect((await call('DELETE', '/_count', undefined, true)).status).toBe(200);
    await call('GET', '/users');
    await call('GET', '/rides/count');
    expect(await call('GET', '/_count')).toEqual({ status: 200, body: [2] });

    const pids = (await call('GET', '/worker/list')).body as number[];
    expect(pids).toHaveLength(2);
    expect([...pids].sort((a, b) => a - b)).toEqual(pids);

    expect((await call('POST', '/db/clear')).status).toBe(403);
    expect((await call('POST', '/crash/slave')).status).toBe(403);
    expect(await call('POST', '/db/clear', undefined, true)).toEqual({ status: 200, body: {} });
    expect((await call('GET', '/users')).status).toBe(204);
  });

  it('crashes the master and a slave, returning their pids, and the cluster recovers', async () => {
    const workers = await cluster.workers();
    const master = workers.find((w) => w.role === 'MASTER')!;
    expect(await call('POST', '/crash/master', undefined, true)).toEqual({ status: 200, body: [master.pid] });
    // The view may still show the old master for a moment: wait for the new one and its slave.
    const slaves = await waitUntil('a new master and a serving slave', async () => {
      const now = await cluster.workers();
      const slaves = now.filter((w) => w.role === 'SLAVE');
      return now.length === 2 && now.some((w) => w.role === 'MASTER' && w.id !== master.id) && slaves.length === 1 && slaves;
    });
    const highest = Math.max(...slaves.map((s) => s.pid));
    expect(await call('POST', '/crash/slave', undefined, true)).toEqual({ status: 200, body: [highest] });
    await cluster.waitHealthy();
    expect(await call('PUT', '/users', { username: 'after_crash', password: PASSWORD })).toEqual({ status: 201, body: {} });
  });
});
