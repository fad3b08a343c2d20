/**
 * Where the docker runtime puts a worker, and which slave to move when the master has no
 * replica on another host. Pure, so the rules are unit-tested without Docker.
 */

/**
 * The host for `workerId`: where it ran before if that host is up (its volume, so its
 * replica, is there), else the up host with the fewest of the cluster's workers (ties: the
 * first in DOCKER_HOSTS). Spreading evenly puts a worker on every host once there are as
 * many workers as hosts, so whichever is master has a slave on another host. Null: no host is up.
 */
export function placeWorker(upHosts: readonly string[], placed: ReadonlyMap<string, string>, workerId: string, previousHost: string | null): string | null {
  if (previousHost !== null && upHosts.includes(previousHost)) return previousHost;
  let best: string | null = null;
  let fewest = Infinity;
  for (const host of upHosts) {
    const count = [...placed].filter(([id, h]) => h === host && id !== workerId).length;
    if (count < fewest) [best, fewest] = [host, count];
  }
  return best;
}

/**
 * A slave to retire so its replacement lands on another host, or null. Needed after a
 * lost host comes back: its replacements all went to the hosts left, so master and slaves
 * may share one host while another is empty.
 */
export function slaveToMove(upHosts: readonly string[], placed: ReadonlyMap<string, string>, masterId: string | null): string | null {
  if (masterId === null || upHosts.length < 2) return null;
  const masterHost = placed.get(masterId);
  if (masterHost === undefined) return null;
  const slaves = [...placed].filter(([id]) => id !== masterId);
  if (slaves.some(([, host]) => host !== masterHost)) return null;
  const emptyHostExists = upHosts.some((h) => h !== masterHost && ![...placed.values()].includes(h));
  return emptyHostExists ? (slaves[0]?.[0] ?? null) : null;
}
