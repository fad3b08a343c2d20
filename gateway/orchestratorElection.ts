import { z } from 'zod';
import { parseJsonOrNull, type ClusterNames } from '../schema';
import { isSurelyGone, parseSequentialName, runForLeadership, ZkError, type Logger, type Zk } from '../platform';
import { presenceOf } from './presence';

/** How often a waiting gateway checks whether the one before it, on the same machine, still runs. */
const PREDECESSOR_CHECK_MS = 250;

/** Who orchestrates, as the winner records it in ZooKeeper; every gateway's view reads it. */
export const orchestratorRecordSchema = z.object({ epoch: z.number().int().min(0), gatewayId: z.string().nullable() });
export type OrchestratorRecord = z.infer<typeof orchestratorRecordSchema>;
export const NO_ORCHESTRATOR: OrchestratorRecord = { epoch: 0, gatewayId: null };

/**
 * Any number of gateways serve a cluster; exactly one orchestrates (spawns, fences,
 * scales, replaces workers). They elect it with the same recipe as the workers elect
 * their master (platform/election.ts); the winner claims the next orchestrator epoch,
 * recorded with its id, and only then acts. When it dies its candidacy znode goes with
 * its session and the next gateway in line takes over, adopting the running workers.
 *
 * A gateway restarted on the same machine (or a second one there) need not wait for the
 * dead one's session to expire: its presence says which process it was, and once that
 * process surely no longer runs (platform/processIdentity.ts) its candidacy is removed.
 * Only then: a gateway that may still run elsewhere could otherwise be made one of two.
 */
export async function runForOrchestrator(
  zk: Zk,
  names: ClusterNames,
  gatewayId: string,
  log: Logger,
  handlers: { onElected(epoch: number): Promise<void>; onLost(reason: string): void },
): Promise<{ stopWatching(): void }> {
  await zk.ensure(names.zkOrchestratorEpoch, Buffer.from(JSON.stringify(NO_ORCHESTRATOR)));
  const watch = new PredecessorWatch(zk, names, log);
  await runForLeadership(zk, names.zkOrchestrators, gatewayId, {
    onElected: async () => {
      watch.stop();
      const epoch = await claimEpoch(zk, names, gatewayId);
      log.info({ epoch }, 'elected to orchestrate the cluster');
      await handlers.onElected(epoch);
    },
    onLost: (reason) => {
      watch.stop();
      handlers.onLost(reason);
    },
    onWaiting: (predecessor) => {
      log.info({ orchestrator: predecessor }, 'another gateway orchestrates; serving the API');
      watch.follow(predecessor);
    },
    onRetry: (err, retryInMs) => log.warn({ err, retryInMs }, 'orchestrator election check failed; retrying'),
  });
  // For a candidacy its expired session took away without telling it (gateway/main.ts).
  return { stopWatching: () => watch.stop() };
}

/**
 * Follows the candidate before this gateway: if its presence names a process on this
 * machine, checks it every PREDECESSOR_CHECK_MS, and once that process is surely gone
 * removes its candidacy (and presence), which wakes the election at once.
 */
class PredecessorWatch {
  private timer: NodeJS.Timeout | null = null;
  /** Bumped by every follow and stop: a lookup still in flight for an earlier predecessor does nothing. */
  private generation = 0;

  constructor(
    private readonly zk: Zk,
    private readonly names: ClusterNames,
    private readonly log: Logger,
  ) {}

  follow(gatewayId: string): void {
    this.stop();
    const generation = this.generation;
    presenceOf(this.zk, this.names, gatewayId)
      .then((presence) => {
        const identity = presence?.identity;
        if (!identity || generation !== this.generation) return;
        const look = () => {
          let gone: boolean;
          try {
            gone = isSurelyGone(identity);
          } catch (err) {
            this.stop();
            return this.log.warn({ err, predecessor: gatewayId }, 'could not check the process of the gateway before this one; waiting for its session instead');
          }
          if (!gone) return;
          this.stop();
          void this.retire(gatewayId, identity.pid);
        };
        this.timer = setInterval(look, PREDECESSOR_CHECK_MS).unref();
        look();
      })
      .catch((err: Error) => this.log.warn({ err, predecessor: gatewayId }, 'could not read the presence of the gateway before this one; waiting for its session instead'));
  }

  stop(): void {
    this.generation++;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async retire(gatewayId: string, pid: number): Promise<void> {
    this.log.warn(
      { predecessor: gatewayId, pid },
      'the gateway before this one in the orchestrator election is gone from this machine; removing its candidacy instead of waiting for its session to expire',
    );
    try {
      const candidacies = (await this.zk.getChildren(this.names.zkOrchestrators)).filter((n) => parseSequentialName(n).workerId === gatewayId);
      await Promise.all([...candidacies.map((n) => this.zk.remove(`${this.names.zkOrchestrators}/${n}`)), this.zk.remove(`${this.names.zkGateways}/${gatewayId}`)]);
    } catch (err) {
      this.log.warn({ err, predecessor: gatewayId }, 'could not remove the candidacy of a gone gateway; waiting for its session instead');
    }
  }
}

async function claimEpoch(zk: Zk, names: ClusterNames, gatewayId: string): Promise<number> {
  for (;;) {
    const got = await zk.getData(names.zkOrchestratorEpoch);
    if (!got) throw new ZkError('NO_NODE', `${names.zkOrchestratorEpoch} does not exist`);
    const current = orchestratorRecordSchema.safeParse(parseJsonOrNull(got.data.toString()));
    const epoch = (current.success ? current.data.epoch : 0) + 1;
    try {
      await zk.setData(names.zkOrchestratorEpoch, Buffer.from(JSON.stringify({ epoch, gatewayId } satisfies OrchestratorRecord)), got.version);
      return epoch;
    } catch (err) {
      if (!(err instanceof ZkError && err.code === 'BAD_VERSION')) throw err;
    }
  }
}

export function parseOrchestratorRecord(text: string): OrchestratorRecord | null {
  const parsed = orchestratorRecordSchema.safeParse(parseJsonOrNull(text));
  return parsed.success ? parsed.data : null;
}
