import { randomBytes } from 'node:crypto';
import { createLogger, ZkError } from '../platform';
import { clusterNames } from '../schema';
import { Coordination } from '../worker/coordination';
import { releaseSilentWorker } from '../gateway/silentWorkerRelease';
import { waitUntil } from './support/cluster';
import { zkSessions } from './support/zkSessions';

// The master's lease renewals and the orchestrator's release of a silent worker, against a
// real ZooKeeper: the release applies only if no renewal came after the version it timed,
// and no renewal succeeds after it.
const names = clusterNames(`t_release_${randomBytes(4).toString('hex')}`);
const { connect, close } = zkSessions();
afterAll(() => close(names.zkRoot));

describe("a silent worker's release", () => {
  it('removes a master only when it renewed nothing since the version timed, and its renewals fail after', async () => {
    const stopped: string[] = [];
    const coordination = new Coordination(
      await connect(),
      names,
      { id: 'wmaster', pid: 1, containerId: null, host: null, role: 'STARTING', appliedSeq: 0, epoch: 0, startedAt: new Date().toISOString(), leaseMs: null },
      () => ({ appliedSeq: 0, epoch: 0 }),
      createLogger('silent', {}),
      (reason) => void stopped.push(reason),
    );
    await coordination.register();
    let elected = false;
    await coordination.runForLeader(async () => {
      elected = true;
    });
    await waitUntil('elected', async () => elected);
    coordination.holdLease(4000);
    expect(await coordination.proveLeadership()).toBe(true);

    const gateway = await connect();
    const [node] = await gateway.getChildren(names.zkWorkers);
    const timed = (await gateway.getData(`${names.zkWorkers}/${node}`))?.version as number;
    expect((JSON.parse(String((await gateway.getData(`${names.zkWorkers}/${node}`))?.data)) as { leaseMs: unknown }).leaseMs).toBe(4000);

    // A later run of the same worker id, in another session: its candidacy is not this one's to release.
    const laterRun = await connect();
    const laterCandidacy = await laterRun.createEphemeralSequential(`${names.zkElection}/wmaster-`, Buffer.from('wmaster'));

    // A renewal after the version was read: nothing may be removed.
    expect(await coordination.proveLeadership()).toBe(true);
    expect(await releaseSilentWorker(gateway, names, node, timed)).toBe('renewed');
    expect(await gateway.getChildren(names.zkWorkers)).toEqual([node]);

    const current = (await gateway.getData(`${names.zkWorkers}/${node}`))?.version as number;
    expect(await releaseSilentWorker(gateway, names, node, current)).toBe('released');
    expect(await gateway.getChildren(names.zkWorkers)).toEqual([]);
    expect(await gateway.getChildren(names.zkElection)).toEqual([laterCandidacy.slice(names.zkElection.length + 1)]);

    // No renewal succeeds after the release, and the master hears of it and stops.
    expect(await coordination.proveLeadership()).toBe(false);
    await waitUntil('the released master stops', async () => stopped.length > 0, 5000);
    expect(stopped[0]).toMatch(/candidacy znode was removed|membership znode removed/);
    await coordination.close();
  });

  it('checks version 0 as version 0, not as any version (node-zookeeper-client sends 0 as -1)', async () => {
    const zk = await connect();
    const path = `${names.zkRoot}/versioned`;
    await zk.mkdirp(names.zkRoot);
    await zk.ensure(path, Buffer.from('a'));
    await zk.setData(path, Buffer.from('b'));
    await expect(zk.commitAll([{ op: 'remove', path, version: 0 }])).rejects.toEqual(expect.objectContaining<Partial<ZkError>>({ code: 'BAD_VERSION' }));
    await zk.commitAll([{ op: 'remove', path, version: 1 }]);
    expect(await zk.getData(path)).toBeNull();
  });
});
