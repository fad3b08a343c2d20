import type Docker from 'dockerode';
import { dockerClients } from './dockerClient';
import { workerStoragePaths, type Config } from '../../platform';

export const VOLUME_CLUSTER_LABEL = 'ridedb.cluster';
export const VOLUME_WORKER_LABEL = 'ridedb.worker';
/** A container being removed still holds its volumes for a moment. */
const IN_USE_RETRY_MS = 250;
const IN_USE_TIMEOUT_MS = 15_000;

type DockerError = Error & { statusCode?: number };

export function workerVolumeName(cluster: string, workerId: string): string {
  return `ridedb_${cluster}_${workerId}`;
}

/**
 * The named volume holding a dedicated worker's PostgreSQL under the docker runtime,
 * created (labelled, so teardown finds every volume of a cluster) if missing, and where
 * to mount it: the worker directory the worker computes from WORKER_DATA_ROOT. A
 * replacement container of the same worker mounts the same volume, so it resumes.
 */
export async function workerVolumeMount(docker: Docker, config: Config, workerId: string): Promise<Docker.MountSettings> {
  const name = workerVolumeName(config.cluster, workerId);
  // Creating an existing volume of the same driver returns it unchanged.
  await docker.createVolume({ Name: name, Labels: { [VOLUME_CLUSTER_LABEL]: config.cluster, [VOLUME_WORKER_LABEL]: workerId } });
  return { Type: 'volume', Source: name, Target: workerStoragePaths(config.workerDataRoot, config.cluster, workerId).workerDir };
}

/** Removes a volume, waiting while a container being removed still holds it; gone already is fine. */
export async function removeVolume(docker: Docker, name: string): Promise<void> {
  const deadline = Date.now() + IN_USE_TIMEOUT_MS;
  for (;;) {
    try {
      await docker.getVolume(name).remove();
      return;
    } catch (err) {
      const code = (err as DockerError).statusCode;
      if (code === 404) return;
      if (code !== 409 || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, IN_USE_RETRY_MS));
    }
  }
}

/** Removes a retired worker's volume (waiting for its dead container to be removed), on whichever host has it. */
export async function removeWorkerVolume(config: Config, workerId: string): Promise<void> {
  await Promise.all(dockerClients(config).map(({ docker }) => removeVolume(docker, workerVolumeName(config.cluster, workerId))));
}

/**
 * Removes every volume labelled for the cluster, on every host of DOCKER_HOSTS. Returns
 * the hosts that did not answer (a lost host's volumes stay until it is back), after
 * clearing the others.
 */
export async function removeClusterVolumes(config: Config): Promise<string[]> {
  const unreachable: string[] = [];
  await Promise.all(
    dockerClients(config).map(async ({ name, docker }) => {
      const listed = await docker.listVolumes({ filters: { label: [`${VOLUME_CLUSTER_LABEL}=${config.cluster}`] } }).catch((err: Error) => {
        unreachable.push(`${name} (${err.message})`);
        return null;
      });
      await Promise.all((listed?.Volumes ?? []).map((v) => removeVolume(docker, v.Name)));
    }),
  );
  return unreachable;
}
