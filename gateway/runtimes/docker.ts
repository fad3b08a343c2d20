import { EventEmitter } from 'node:events';
import Docker from 'dockerode';
import type { Config, Logger } from '../../platform';
import { workerVolumeMount } from './dockerVolumes';
import type { RuntimeWorker, WorkerRuntime, WorkerSpec } from './runtime';

const STOP_GRACE_SECONDS = 5;
export const CLUSTER_LABEL = 'ridedb.cluster';
export const WORKER_LABEL = 'ridedb.worker';

interface DockerEvent {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

/**
 * Workers as Docker containers, through dockerode: labelled with the cluster, host
 * networking (every address stays loopback) and the host's pid namespace, so the pid a
 * worker reports is the container's main pid as the host sees it. Exits are learned from
 * the Docker events stream. With WORKER_STORAGE=dedicated each container runs its own
 * PostgreSQL, its data in a named volume per worker (gateway/runtimes/dockerVolumes.ts).
 */
export class DockerRuntime extends EventEmitter implements WorkerRuntime {
  readonly name = 'docker';
  private docker = new Docker();
  private workers = new Map<string, RuntimeWorker>();
  // dockerode's type omits destroy(); the stream it returns has it.
  private events: (NodeJS.ReadableStream & { destroy?: () => void }) | null = null;

  constructor(
    private readonly cluster: string,
    private readonly image: string,
    private readonly log: Logger,
    /** Set when workers keep a PostgreSQL of their own (dedicated storage): volumes are mounted. */
    private readonly dedicatedStorage: Config | null = null,
  ) {
    super();
  }

  async start(): Promise<void> {
    await this.docker.ping().catch((err: Error) => {
      throw new Error(`WORKER_RUNTIME=docker but the Docker daemon does not answer: ${err.message}`);
    });
    await this.docker
      .getImage(this.image)
      .inspect()
      .catch(() => {
        throw new Error(`worker image ${this.image} is missing: run scripts/build-worker-image.sh (npm start does)`);
      });
    const stream = await this.docker.getEvents({
      filters: { type: ['container'], event: ['die'], label: [`${CLUSTER_LABEL}=${this.cluster}`] },
    });
    let pending = '';
    stream.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) this.onEvent(JSON.parse(line) as DockerEvent);
    });
    stream.on('error', (err: Error) => this.log.error({ err }, 'Docker events stream failed'));
    this.events = stream;
  }

  async adopt(worker: RuntimeWorker): Promise<boolean> {
    const [container] = await this.docker.listContainers({
      filters: { label: [`${CLUSTER_LABEL}=${this.cluster}`, `${WORKER_LABEL}=${worker.workerId}`], status: ['running'] },
    });
    if (!container) return false;
    const info = await this.docker.getContainer(container.Id).inspect();
    this.workers.set(worker.workerId, { workerId: worker.workerId, pid: info.State.Pid, containerId: container.Id });
    return true;
  }

  private onEvent(event: DockerEvent): void {
    const workerId = event.Actor?.Attributes?.[WORKER_LABEL];
    const worker = workerId ? this.workers.get(workerId) : undefined;
    if (!worker || worker.containerId !== event.Actor?.ID) return;
    this.workers.delete(worker.workerId);
    this.emit('exit', worker, `container died (exit code ${event.Actor?.Attributes?.exitCode ?? '?'})`);
    void this.remove(worker.containerId);
  }

  private async remove(containerId: string | null): Promise<void> {
    if (!containerId) return;
    await this.docker
      .getContainer(containerId)
      .remove({ force: true })
      .catch((err: Error & { statusCode?: number }) => {
        if (err.statusCode !== 404 && err.statusCode !== 409) this.log.warn({ err, containerId }, 'could not remove container');
      });
  }

  async spawn(spec: WorkerSpec): Promise<RuntimeWorker> {
    // Each life of a worker gets its own container name: the previous container may still
    // be being removed when its replacement starts.
    const name = `ridedb-${this.cluster}-${spec.workerId}-${Date.now().toString(36)}`;
    const mounts = this.dedicatedStorage ? [await workerVolumeMount(this.docker, this.dedicatedStorage, spec.workerId)] : [];
    const container = await this.docker.createContainer({
      Image: this.image,
      name,
      Env: Object.entries({ ...spec.env, WORKER_ID: spec.workerId }).map(([k, v]) => `${k}=${v}`),
      Labels: { [CLUSTER_LABEL]: this.cluster, [WORKER_LABEL]: spec.workerId },
      HostConfig: { NetworkMode: 'host', PidMode: 'host', Mounts: mounts },
    });
    await container.start();
    const info = await container.inspect();
    const worker: RuntimeWorker = { workerId: spec.workerId, pid: info.State.Pid, containerId: container.id };
    this.workers.set(spec.workerId, worker);
    return worker;
  }

  async kill(target: RuntimeWorker): Promise<void> {
    const workerId = target.workerId;
    // A gateway that does not orchestrate knows no containers: find it by its labels.
    const containerId =
      this.workers.get(workerId)?.containerId ??
      target.containerId ??
      (await this.docker.listContainers({ filters: { label: [`${CLUSTER_LABEL}=${this.cluster}`, `${WORKER_LABEL}=${workerId}`], status: ['running'] } }))[0]?.Id;
    if (!containerId) return;
    await this.docker
      .getContainer(containerId)
      .kill({ signal: 'SIGKILL' })
      .catch((err: Error) => this.log.warn({ err, workerId }, 'kill failed'));
  }

  list(): RuntimeWorker[] {
    return [...this.workers.values()];
  }

  async stopAll(): Promise<void> {
    const all = [...this.workers.values()];
    await Promise.all(
      all.map(async (w) => {
        const container = this.docker.getContainer(w.containerId ?? '');
        await container.stop({ t: STOP_GRACE_SECONDS }).catch((err: Error & { statusCode?: number }) => {
          if (err.statusCode !== 304 && err.statusCode !== 404) this.log.warn({ err, workerId: w.workerId }, 'stop failed');
        });
        await this.remove(w.containerId);
      }),
    );
    // Containers labelled for this cluster that this process did not start (an earlier gateway's).
    const leftovers = await this.docker.listContainers({ all: true, filters: { label: [`${CLUSTER_LABEL}=${this.cluster}`] } });
    await Promise.all(leftovers.map((c) => this.remove(c.Id)));
    this.events?.destroy?.();
  }
}
