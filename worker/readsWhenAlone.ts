import type { Logger } from '../schema';
import type { ReadServer } from './slave';

/** How often the master looks for serving slaves. */
const CHECK_MS = 500;

/**
 * Reads must not go unanswered while a master is up: when no slave serves (the only slave
 * was just promoted, or is catching up after a crash), the master serves ReadQ itself,
 * and stops as soon as a slave does. Read-your-writes holds trivially there: the master
 * has applied every write it acknowledged.
 */
export function serveReadsWhenAlone(deps: {
  slaveCount(): Promise<number>;
  startReads(): Promise<ReadServer>;
  log: Logger;
}): { stop(): Promise<void> } {
  let reads: ReadServer | null = null;
  let busy = false;
  let stopped = false;
  const check = async () => {
    if (busy || stopped) return;
    busy = true;
    try {
      const slaves = await deps.slaveCount();
      if (slaves === 0 && !reads) {
        reads = await deps.startReads();
        deps.log.warn('no slave serves reads: the master answers them until one does');
      } else if (slaves > 0 && reads) {
        const serving = reads;
        reads = null;
        await serving.stop();
        deps.log.info({ slaves }, 'a slave serves reads again: the master stopped answering them');
      }
    } catch (err) {
      // ZooKeeper unreachable: keep the current state; the lease decides about leadership.
      deps.log.warn({ err }, 'could not check for serving slaves');
    } finally {
      busy = false;
    }
  };
  void check();
  const timer = setInterval(() => void check(), CHECK_MS);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await reads?.stop();
    },
  };
}
