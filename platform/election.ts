import { parseSequentialName, sortBySequence, type Zk } from './zk';

export interface Candidacy {
  /** The candidate's znode name under the election directory. */
  readonly node: string;
}

/**
 * ZooKeeper's leader-election recipe, for workers (the master) and gateways (the
 * orchestrator) alike: each candidate creates an ephemeral sequential znode; the lowest
 * leads; every other candidate watches only its predecessor, so a leader's death wakes
 * one candidate. `onElected` runs once, with the candidacy's znode name; `onLost` is told when the candidacy znode is
 * gone (the session expired, or someone removed it) or taking the lead failed. A check
 * that fails because the connection dropped (the session lives on) is retried; an
 * expired session is the session owner's to handle (worker/coordination.ts,
 * gateway/zkSession.ts). `onRetry` hears of each retry.
 */
export async function runForLeadership(
  zk: Zk,
  directory: string,
  candidateId: string,
  handlers: { onElected(node: string): Promise<void>; onLost(reason: string): void; onWaiting?(predecessorId: string): void; onRetry?(err: unknown, retryInMs: number): void },
): Promise<Candidacy> {
  await zk.mkdirp(directory);
  const path = await zk.createEphemeralSequential(`${directory}/${candidateId}-`, Buffer.from(candidateId));
  const node = path.slice(directory.length + 1);
  let elected = false;
  let stopped = false;
  const check = async (): Promise<void> => {
    if (stopped || elected) return;
    const candidates = sortBySequence(await zk.getChildren(directory));
    // Another check (a second watch, a retried one) may have decided while this one waited.
    if (stopped || elected) return;
    const index = candidates.indexOf(node);
    if (index === -1) {
      stopped = true;
      return handlers.onLost('election candidacy znode was removed');
    }
    if (index === 0) {
      elected = true;
      // A leader hears of its own candidacy's removal too: someone judged it gone (a dead
      // process's znodes are cleared early), and it must not lead on beside a successor.
      ownNodeChanged();
      return handlers.onElected(node).catch((err: Error) => handlers.onLost(`could not take the lead: ${err.message}`));
    }
    const predecessor = candidates[index - 1];
    const exists = await zk.exists(`${directory}/${predecessor}`, predecessorChanged);
    if (!exists) return check();
    handlers.onWaiting?.(parseSequentialName(predecessor).workerId);
  };
  // One function for every watch this candidacy sets: the client merges a watcher set
  // again with the same function, so a repeated check never doubles the checks after it.
  const predecessorChanged = () => zk.keepArmed(check, (err, retryInMs) => handlers.onRetry?.(err, retryInMs));
  const ownNodeChanged = () =>
    zk.keepArmed(
      async () => {
        if (stopped) return;
        if (await zk.exists(path, ownNodeChanged)) return;
        stopped = true;
        handlers.onLost('election candidacy znode was removed');
      },
      (err, retryInMs) => handlers.onRetry?.(err, retryInMs),
    );
  await check();
  return { node };
}
