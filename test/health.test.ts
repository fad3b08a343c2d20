import express from 'express';
import type { AddressInfo } from 'node:net';
import { healthz, livez, type HealthSources } from '../gateway/health';
import { TestCluster, waitUntil } from './support/cluster';
import { PrivateZookeeper } from './support/privateZookeeper';

interface HealthBody {
  status: string;
  reasons: string[];
  dependencies: Record<string, 'up' | 'down'>;
  master: string | null;
  slaves: string[];
}

const getJson = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as HealthBody };
};

// The shared ZooKeeper serves every other cluster on this machine: this test stops only its own.
let zk: PrivateZookeeper;
let cluster: TestCluster;
beforeAll(async () => {
  zk = await PrivateZookeeper.prepare();
  await zk.start();
  // A session longer than the outage below, so the workers ride it out instead of stopping.
  cluster = await TestCluster.start({ ZK_HOSTS: zk.hosts, ZK_SESSION_TIMEOUT_MS: '30000' });
});
afterAll(async () => {
  if (zk && !(await zk.answers())) await zk.start();
  await cluster?.stop();
  await zk?.remove();
});

describe('/healthz and /livez', () => {
  it('/healthz answers 503 naming zookeeper while it is down, /livez stays 200, and /healthz recovers when it is back', async () => {
    const before = await getJson(`${cluster.url}/healthz`);
    expect(before.status).toBe(200);
    expect(before.body.dependencies).toEqual({ rabbitmq: 'up', zookeeper: 'up' });
    expect((await fetch(`${cluster.url}/livez`)).status).toBe(200);

    await zk.stop();
    const during = await waitUntil(
      '/healthz to report zookeeper down',
      async () => {
        const got = await getJson(`${cluster.url}/healthz`);
        return got.status === 503 ? got : null;
      },
      15_000,
    );
    expect(during.body.status).toBe('unavailable');
    expect(during.body.dependencies.zookeeper).toBe('down');
    expect(during.body.reasons.join('\n')).toMatch(/zookeeper/);
    expect((await fetch(`${cluster.url}/livez`)).status).toBe(200);

    await zk.start();
    await waitUntil('/healthz to recover', async () => (await fetch(`${cluster.url}/healthz`)).status === 200, 60_000);
    expect((await getJson(`${cluster.url}/healthz`)).body.dependencies).toEqual({ rabbitmq: 'up', zookeeper: 'up' });
  });
});

describe('/healthz verdicts', () => {
  // The broker is shared too and cannot be stopped here; the verdict for it is the same code path.
  const serve = async (sources: HealthSources) => {
    const app = express();
    app.get('/healthz', healthz(sources));
    app.get('/livez', livez());
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(r)) };
  };
  const worker = (id: string, role: 'MASTER' | 'SLAVE') => ({ id, pid: 1, containerId: null, host: null, role, appliedSeq: 0, startedAt: new Date().toISOString() });

  it('names rabbitmq when the broker link is down, and a missing slave, and /livez stays 200', async () => {
    const server = await serve({
      dependencies: { rabbitmq: () => false, zookeeper: () => true },
      cluster: { master: () => worker('w1', 'MASTER'), slaves: () => [], epoch: 1 },
    });
    try {
      const got = await getJson(`${server.url}/healthz`);
      expect(got.status).toBe(503);
      expect(got.body.dependencies).toEqual({ rabbitmq: 'down', zookeeper: 'up' });
      expect(got.body.reasons).toEqual([expect.stringMatching(/^rabbitmq unreachable/), 'no slave serving reads']);
      expect((await fetch(`${server.url}/livez`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
