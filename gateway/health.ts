import type express from 'express';
import type { WorkerRecord } from '../schema';

/** A service the gateway needs, and whether it reaches it right now. */
export type Dependency = 'rabbitmq' | 'zookeeper';

export interface HealthSources {
  /** Probed on every request: a link that dropped a moment ago must show at once. */
  dependencies: Record<Dependency, () => boolean>;
  cluster: {
    master(): WorkerRecord | null;
    slaves(): WorkerRecord[];
    readonly epoch: number;
  };
}

const WHY_DOWN: Record<Dependency, string> = {
  rabbitmq: 'rabbitmq unreachable from the gateway: no request can reach a worker',
  zookeeper: 'zookeeper unreachable from the gateway: membership and election are unknown, workers stop after their session timeout',
};

/**
 * /healthz (readiness): 200 when the gateway reaches RabbitMQ and ZooKeeper and a master
 * serves (`degraded` while no slave does and the master answers reads too); else 503
 * naming what fails. While ZooKeeper is down the
 * master and slaves listed are the last ones seen, so they alone cannot prove health.
 */
export function healthz(sources: HealthSources) {
  return (_req: express.Request, res: express.Response) => {
    const down = (Object.keys(sources.dependencies) as Dependency[]).filter((name) => !sources.dependencies[name]());
    const master = sources.cluster.master();
    const slaves = sources.cluster.slaves();
    const failing = [...down.map((name) => WHY_DOWN[name]), ...(master ? [] : ['no master'])];
    const reasons = [...failing, ...(slaves.length ? [] : ['no slave serving reads'])];
    // Without a slave the master answers reads itself (worker/readsWhenAlone.ts): the
    // cluster is degraded (no read capacity to spare, one failure from read-only), not down.
    const status = failing.length ? 'unavailable' : reasons.length ? 'degraded' : 'ok';
    res.status(failing.length ? 503 : 200).json({
      status,
      reasons,
      dependencies: Object.fromEntries((Object.keys(sources.dependencies) as Dependency[]).map((name) => [name, down.includes(name) ? 'down' : 'up'])),
      master: master?.id ?? null,
      slaves: slaves.map((s) => s.id),
      epoch: sources.cluster.epoch,
    });
  };
}

/**
 * /livez (liveness): 200 whenever the process answers at all. It never looks at the
 * services, so a supervisor does not restart a healthy gateway for an outage of
 * ZooKeeper or RabbitMQ, which a restart cannot fix.
 */
export function livez() {
  return (_req: express.Request, res: express.Response) => {
    res.status(200).json({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) });
  };
}
