import type { ClusterNames } from '../schema';
import { parseSequentialName, ZkError, type Zk } from '../platform';

export type ReleaseOutcome = 'released' | 'renewed' | 'gone';

/**
 * Removes a silent worker's membership znode and its session's election candidacy in one
 * ZooKeeper multi that checks the membership znode still has `version`, the one the
 * watchdog timed past a master's lease (worker/lease.ts). A master renews its lease only
 * by writing that znode while its candidacy exists, so if the multi applies, the master
 * renewed nothing since the version was read and can renew nothing after: its lease has
 * lapsed and the next candidate may lead. Only the candidacies of the membership znode's
 * own session go: a later run of the same worker id proves nothing about this one.
 *
 * 'renewed': it wrote meanwhile, nothing removed. 'gone': its membership or candidacy
 * went meanwhile (its session ended, or its exit was handled).
 */
export async function releaseSilentWorker(zk: Zk, names: ClusterNames, node: string, version: number): Promise<ReleaseOutcome> {
  const memberPath = `${names.zkWorkers}/${node}`;
  const member = await zk.getData(memberPath);
  if (!member) return 'gone';
  if (member.version !== version) return 'renewed';
  const workerId = parseSequentialName(node).workerId;
  const candidacies: string[] = [];
  for (const name of await zk.getChildren(names.zkElection)) {
    if (parseSequentialName(name).workerId !== workerId) continue;
    const path = `${names.zkElection}/${name}`;
    if ((await zk.getData(path))?.owner === member.owner) candidacies.push(path);
  }
  try {
    await zk.commitAll([{ op: 'remove', path: memberPath, version }, ...candidacies.map((path) => ({ op: 'remove' as const, path, version: -1 }))]);
    return 'released';
  } catch (err) {
    if (err instanceof ZkError && err.code === 'BAD_VERSION') return 'renewed';
    if (err instanceof ZkError && err.code === 'NO_NODE') return 'gone';
    throw err;
  }
}
