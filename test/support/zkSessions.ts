import { Zk } from '../../platform';

/**
 * ZooKeeper sessions a test opens against the machine's ZooKeeper (ZK_HOSTS); `close`
 * removes the test's own tree first (through the last session still open), then ends them.
 */
export function zkSessions(): { connect: () => Promise<Zk>; close: (root: string) => Promise<void> } {
  const sessions: Zk[] = [];
  return {
    connect: async () => {
      const zk = await Zk.connect(process.env.ZK_HOSTS ?? '127.0.0.1:2181', 6000);
      sessions.push(zk);
      return zk;
    },
    close: async (root) => {
      await sessions[sessions.length - 1]?.removeRecursive(root);
      for (const zk of sessions) zk.close();
    },
  };
}
