import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { ClusterView } from '../gateway/clusterView';
import { createLogger, Zk, ZkError } from '../platform';
import { clusterNames, encode, type MemberData } from '../schema';
import { sleep, waitUntil } from './support/cluster';
import { PrivateZookeeper } from './support/privateZookeeper';

// What a client sees when a server of the ensemble goes away (stops, or the ensemble
// changes leader) while the session lives on: requests in flight fail with
// CONNECTION_LOSS, and the next server may accept the connection but not answer yet.
// The server is private, and clients reach it through a proxy that can cut every
// connection at once, as a dying server would.
let server: PrivateZookeeper;
let proxy: CuttingProxy;
const sessions: Zk[] = [];
const SESSION_MS = 6000;
const connect = async (hosts = proxy.hosts) => {
  const zk = await Zk.connect(hosts, SESSION_MS);
  sessions.push(zk);
  return zk;
};

const REPLY_DELAY_MS = 20;

/** A TCP proxy to `port` whose connections `cut()` drops and `outage()` refuses for a while. */
class CuttingProxy {
  private sockets = new Set<net.Socket>();
  private downUntil = 0;
  private constructor(private readonly server: net.Server) {}
  static async start(port: number): Promise<CuttingProxy> {
    const server = net.createServer();
    const proxy = new CuttingProxy(server);
    server.on('connection', (client) => {
      if (Date.now() < proxy.downUntil) return client.destroy();
      const upstream = net.connect(port, '127.0.0.1');
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ]) {
        proxy.sockets.add(a);
        // Answers arrive late, as over a network: a cut then often catches one in flight.
        a.on('data', (chunk: Buffer) => setTimeout(() => b.writable && b.write(chunk), a === upstream ? REPLY_DELAY_MS : 0));
        a.on('error', () => b.destroy());
        a.on('close', () => {
          proxy.sockets.delete(a);
          b.destroy();
        });
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }
  get hosts(): string {
    return `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }
  /** Cuts every connection and refuses new ones for `ms`, as an ensemble electing a leader does. */
  outage(ms: number): void {
    this.downUntil = Date.now() + ms;
    this.cut();
  }
  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

beforeAll(async () => {
  server = await PrivateZookeeper.prepare();
  await server.start();
  proxy = await CuttingProxy.start(server.port);
}, 120_000);
afterAll(async () => {
  for (const zk of sessions) zk.close();
  await proxy?.close();
  await server?.remove();
});

describe('ZooKeeper watches across a lost connection', () => {
  it('keepArmed retries a failed arm until it succeeds, and not once the Zk is closed', async () => {
    const zk = await connect();
    const failures: unknown[] = [];
    let calls = 0;
    zk.keepArmed(
      async () => {
        calls++;
        if (calls <= 2) throw new ZkError('CONNECTION_LOSS', 'lost in flight');
      },
      (err) => failures.push(err),
    );
    await waitUntil('the third attempt', async () => calls === 3);
    expect(failures.map((e) => (e as ZkError).code)).toEqual(['CONNECTION_LOSS', 'CONNECTION_LOSS']);

    let afterClose = 0;
    zk.keepArmed(
      async () => {
        afterClose++;
        throw new ZkError('CONNECTION_LOSS', 'lost in flight');
      },
      () => zk.close(),
    );
    await sleep(1500);
    expect(afterClose).toBe(1);
  });

  it("keeps the gateway's view of a worker current through dropped connections while the worker updates it", async () => {
    const names = clusterNames(`t_zkw_${randomBytes(4).toString('hex')}`);
    const worker = await connect();
    const view = new ClusterView(await connect(), names, createLogger('silent', {}));
    await view.start();
    const member: MemberData = { id: 'w1', pid: 1, containerId: null, host: null, role: 'SLAVE', appliedSeq: 0, epoch: 1, startedAt: new Date().toISOString(), leaseMs: null };
    const path = await worker.createEphemeralSequential(`${names.zkWorkers}/w1-`, encode(member));
    await waitUntil('the member in the view', async () => view.workers().length === 1);

    // Updated as fast as the server takes it, so the view's re-arming read is nearly always
    // in flight when the server goes away.
    let seq = 0;
    let stop = false;
    const updates = (async () => {
      while (!stop) {
        const next = seq + 1;
        // One lost with the connection is sent again (it may have been applied: same value).
        const sent = await worker.setData(path, encode({ ...member, appliedSeq: next })).then(
          () => true,
          (err: ZkError) => (err.code === 'CONNECTION_LOSS' ? sleep(50).then(() => false) : Promise.reject(err)),
        );
        if (sent) seq = next;
      }
    })();
    try {
      await waitUntil('updates reaching the view', async () => view.workers()[0].appliedSeq > 20);
      // With answers 20 ms late, most cuts catch one of the view's re-arming reads in flight.
      for (let cut = 0; cut < 5; cut++) {
        // Longer than a resend takes, shorter than the session.
        proxy.outage(1500);
        const after = seq;
        await waitUntil('updates after the cut', async () => seq > after + 3);
      }
    } finally {
      stop = true;
      await updates;
    }
    await waitUntil(`the view at the last update (${seq})`, async () => view.workers()[0]?.appliedSeq === seq, 10_000).catch((err: Error) => {
      throw new Error(`${err.message}; the view has ${view.workers()[0]?.appliedSeq}`);
    });
    view.close();
  }, 120_000);

  it('answers every request, with OPERATION_TIMEOUT at the latest, when the session is cut off for good', async () => {
    const zk = await connect();
    proxy.outage(60_000);
    try {
      await waitUntil('the client to notice', async () => !zk.connected);
      const began = Date.now();
      const outcome = await zk.getData('/').then(
        () => 'answered',
        (err: ZkError) => err.code,
      );
      expect(outcome).toBe('OPERATION_TIMEOUT');
      expect(Date.now() - began).toBeLessThan(2 * SESSION_MS + 1000);
    } finally {
      proxy.outage(0);
      zk.close();
    }
  }, 60_000);

  it('gives up on a server that accepts the connection but does not answer, and tries the next', async () => {
    // Listed with the real server; the client takes them in a random order, so connect
    // until it has met the silent one at least once.
    const held: net.Socket[] = [];
    const silent = net.createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const hosts = `127.0.0.1:${(silent.address() as net.AddressInfo).port},${server.hosts}`;
    try {
      for (let attempt = 0; attempt < 20 && held.length === 0; attempt++) (await connect(hosts)).close();
      expect(held.length).toBeGreaterThan(0);
    } finally {
      for (const s of held) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  }, 120_000);
});
