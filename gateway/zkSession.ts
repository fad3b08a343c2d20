import { reconnectDelayMs, ZkState, type Logger, type Zk } from '../platform';

export interface SessionHandlers {
  /** The session expired: what it held (presence, candidacy, watches) is gone. Synchronous: act at once. */
  expired(): void;
  /** A new session is open: register again what the old one held. */
  renewed(): Promise<void>;
}

/**
 * Keeps a gateway in the cluster across an expired ZooKeeper session (a long pause, a
 * partition longer than ZK_SESSION_TIMEOUT_MS): it opens a new session and has the
 * gateway register again, instead of serving a cluster view that no longer changes.
 * A worker fail-stops on expiry instead (worker/coordination.ts): its master role and
 * lease cannot outlive the session; a gateway holds nothing another gateway relies on
 * except the orchestrator role, which `expired` gives up at once.
 */
export function keepSession(zk: Zk, handlers: SessionHandlers, log: Logger): { generation: () => number } {
  let generation = 0;
  let renewing = false;
  const renew = async (attempt: number): Promise<void> => {
    try {
      await zk.renewSession();
      await handlers.renewed();
      renewing = false;
      log.info({ generation }, 'ZooKeeper session renewed; this gateway is registered again');
    } catch (err) {
      // Jittered, so that gateways cut off together do not return in lockstep.
      const wait = reconnectDelayMs(attempt);
      log.warn({ err, retryInMs: Math.round(wait) }, 'could not renew the ZooKeeper session; retrying');
      setTimeout(() => void renew(attempt + 1), wait).unref();
    }
  };
  zk.onState((state) => {
    if (state !== ZkState.EXPIRED || renewing) return;
    renewing = true;
    generation++;
    log.warn({ generation }, 'ZooKeeper session expired; opening a new one');
    handlers.expired();
    void renew(0);
  });
  return { generation: () => generation };
}
