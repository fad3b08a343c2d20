import { z } from 'zod';
import { parseJsonOrNull, type ClusterNames } from '../schema';
import { processIdentitySchema, ZkError, type Zk } from '../platform';

/**
 * A running gateway announces itself with an ephemeral znode under `/C/gateways`, so
 * `cluster:destroy` (teardown.ts) can refuse to pull a live cluster's queues, znodes
 * and databases away. Ephemeral: it goes with the gateway's ZooKeeper session, at once
 * on a clean stop, within ZK_SESSION_TIMEOUT_MS when the gateway is killed.
 */
const presenceSchema = z.object({
  id: z.string(),
  pid: z.number().int(),
  host: z.string(),
  port: z.number().int(),
  startedAt: z.string(),
  /** Lets a gateway on the same machine tell for sure that this one is gone (absent before 2026-11-28, and off Linux). */
  identity: processIdentitySchema.nullable().default(null),
});
export type GatewayPresence = z.infer<typeof presenceSchema>;

/** A gateway's presence as it announced it (its id alone when unreadable), or null when there is none. */
export async function presenceOf(zk: Zk, names: ClusterNames, gatewayId: string): Promise<(Partial<GatewayPresence> & { id: string }) | null> {
  const got = await zk.getData(`${names.zkGateways}/${gatewayId}`);
  if (!got) return null;
  const parsed = presenceSchema.safeParse(parseJsonOrNull(got.data.toString()));
  return parsed.success ? parsed.data : { id: gatewayId };
}

export async function announceGateway(zk: Zk, names: ClusterNames, gateway: GatewayPresence): Promise<void> {
  await zk.mkdirp(names.zkGateways);
  await zk.createEphemeral(`${names.zkGateways}/${gateway.id}`, Buffer.from(JSON.stringify(gateway)));
}

/** The gateways whose znode is there now; an unreadable one is listed by its id alone. */
export async function liveGateways(zk: Zk, names: ClusterNames): Promise<Array<Partial<GatewayPresence> & { id: string }>> {
  let ids: string[];
  try {
    ids = await zk.getChildren(names.zkGateways);
  } catch (err) {
    if (err instanceof ZkError && err.code === 'NO_NODE') return [];
    throw err;
  }
  // null: gone since the listing.
  const found = await Promise.all(ids.map((id) => presenceOf(zk, names, id)));
  return found.filter((g) => g !== null);
}
