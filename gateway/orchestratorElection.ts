import { z } from 'zod';
import { parseJsonOrNull, type ClusterNames } from '../schema';
import { runForLeadership, ZkError, type Logger, type Zk } from '../platform';

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
 */
export async function runForOrchestrator(
  zk: Zk,
  names: ClusterNames,
  gatewayId: string,
  log: Logger,
  handlers: { onElected(epoch: number): Promise<void>; onLost(reason: string): void },
): Promise<void> {
  await zk.ensure(names.zkOrchestratorEpoch, Buffer.from(JSON.stringify(NO_ORCHESTRATOR)));
  await runForLeadership(zk, names.zkOrchestrators, gatewayId, {
    onElected: async () => {
      const epoch = await claimEpoch(zk, names, gatewayId);
      log.info({ epoch }, 'elected to orchestrate the cluster');
      await handlers.onElected(epoch);
    },
    onLost: (reason) => handlers.onLost(reason),
    onWaiting: (predecessor) => log.info({ orchestrator: predecessor }, 'another gateway orchestrates; serving the API'),
    onRetry: (err, retryInMs) => log.warn({ err, retryInMs }, 'orchestrator election check failed; retrying'),
  });
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
