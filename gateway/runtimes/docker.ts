import { EventEmitter } from 'node:events';
import type Docker from 'dockerode';
import type { Config, Logger } from '../../platform';
import { dockerClients } from './dockerClient';
import { removeVolume, workerVolumeMount, workerVolumeName } from './dockerVolumes';
import { placeWorker } from './placement';
import type { Adoption, RuntimeWorker, WorkerRuntime, WorkerSpec } from './runtime';

const STOP_GRACE_SECONDS = 5;
/** How often every daemon is pinged, to learn of a lost host (and of its return). */
const HOST_CHECK_MS = 1000;
const PING_TIMEOUT_MS = 2000;
export const CLUSTER_LABEL = 'ridedb.cluster';
export const WORKER_LABEL = 'ridedb.worker';

interface DockerEvent {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

type DockerError = Error & { statusCode?: number };

/** One daemon of DOCKER_HOSTS as the runtime tracks it. */
interface Host {
  name: string;
  docker: Docker;
  /** Placeable: answered its last ping and holds the worker image. */
  up: boolean;
  lastAnswer: number;
  // dockerode's type omits destroy(); the stream it returns has it.
  events: (NodeJS.ReadableStream & { destroy?: () => void }) | null;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Workers as Docker containers, through dockerode, on one daemon or several
 * (DOCKER_HOSTS): labelled with the cluster, host networking and the host's pid
 * namespace, so the pid a worker reports is its main pid as its host sees it. Exits are
 * learned from each daemon's events stream. A worker goes back to the host it ran on
 * (its volume is there), a new one to the host with fewest workers (placement.ts). A
 * daemon that does not answer for DOCKER_HOST_TIMEOUT_MS counts as a lost host: its
 * workers are reported gone (hostLost), and the orchestrator replaces them on the others.
 * When it answers again, the containers and volumes of the cluster left on it (replaced
 * meanwhile) are removed before anything is placed there. With WORKER_STORAGE=dedicated
 * each container runs its own PostgreSQL, its data in a named volume per worker on its host.
 */
export class DockerRuntime extends EventEmitter implements WorkerRuntime {
  readonly name = 'docker';
  private readonly hosts: Host[];
  private workers = new Map<string, RuntimeWorker>();
  /** Where each worker id last ran, so a restart finds its volume. */
  private lastHost = new Map<string, string>();
  /** Workers reported gone with their host, by host: cleared off it when it returns. */
  private lostOn = new Map<string, Set<string>>();
  private checker: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    super();
    this.hosts = dockerClients(config).map(({ name, docker }) => ({ name, docker, up: false, lastAnswer: 0, events: null }));
  }

  private get cluster(): string {
    return this.config.cluster;
  }

  private get dedicated(): boolean {
    return this.config.workerStorage === 'dedicated';
  }

  /** Needs one daemon that answers and holds the image; the others join when they do. */
  async start(): Promise<void> {
    const problems: string[] = [];
    await Promise.all(
      this.hosts.map((host) =>
        this.bringUp(host).catch((err: Error) => {
          problems.push(`${host.name}: ${err.message}`);
          host.lastAnswer = Date.now();
        }),
      ),
    );
    if (!this.hosts.some((h) => h.up)) throw new Error(`WORKER_RUNTIME=docker but no Docker host is usable: ${problems.join('; ')}`);
    for (const problem of problems) this.log.warn({ problem }, 'a Docker host is not usable yet; it is placed on once it answers');
    this.checker = setInterval(() => void this.checkHosts(), HOST_CHECK_MS);
  }

  upHosts(): string[] {
    return this.hosts.filter((h) => h.up).map((h) => h.name);
  }

  /** Checks a daemon answers and has the image, clears what the cluster left there, and watches its events. */
  private async bringUp(host: Host): Promise<void> {
    await withTimeout(host.docker.ping(), PING_TIMEOUT_MS, 'the Docker daemon').catch((err: Error) => {
      throw new Error(`the Docker daemon does not answer: ${err.message}`);
    });
    await host.docker
      .getImage(this.config.workerImage)
      .inspect()
      .catch(() => {
        throw new Error(`worker image ${this.config.workerImage} is missing there: run scripts/build-worker-image.sh against it (npm start does, for the local daemon)`);
      });
    await this.clearLeftovers(host);
    const stream = await host.docker.getEvents({ filters: { type: ['container'], event: ['die'], label: [`${CLUSTER_LABEL}=${this.cluster}`] } });
    let pending = '';
    stream.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) this.onEvent(host, JSON.parse(line) as DockerEvent);
    });
    stream.on('error', (err: Error) => this.log.warn({ err, host: host.name }, 'Docker events stream failed'));
    host.events = stream;
    host.lastAnswer = Date.now();
    host.up = true;
  }

  /**
   * A host back after being lost: the containers of the workers it had then (replaced
   * elsewhere meanwhile, under new ids) and their volumes go. Only those: another
   * gateway's runtime, or a gateway that does not orchestrate, lost none and removes nothing.
   */
  private async clearLeftovers(host: Host): Promise<void> {
    const lost = this.lostOn.get(host.name);
    if (!lost?.size) return;
    await Promise.all(
      [...lost].map(async (workerId) => {
        const containers = await host.docker.listContainers({ all: true, filters: { label: [`${CLUSTER_LABEL}=${this.cluster}`, `${WORKER_LABEL}=${workerId}`] } });
        const removed = await Promise.all(containers.map((c) => this.remove(host, c.Id)));
        // Only now is its process surely stopped: the orchestrator may free what it held
        // (a master that ran on meanwhile is replaced at once).
        if (removed.every(Boolean)) this.emit('gone', workerId);
        if (this.dedicated) await removeVolume(host.docker, workerVolumeName(this.cluster, workerId));
      }),
    );
    this.log.warn({ host: host.name, workers: [...lost] }, 'removed the containers and volumes a returning host still had of its lost workers');
    this.lostOn.delete(host.name);
  }

  private async checkHosts(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      await Promise.all(this.hosts.map((host) => this.checkHost(host)));
    } finally {
      this.checking = false;
    }
  }

  private async checkHost(host: Host): Promise<void> {
    if (!host.up) {
      // Down or never up: try to bring it (back) in.
      await this.bringUp(host).then(
        () => this.log.warn({ host: host.name }, 'Docker host is usable again'),
        (err: Error) => this.log.debug({ err, host: host.name }, 'Docker host still not usable'),
      );
      return;
    }
    const answered = await withTimeout(host.docker.ping(), PING_TIMEOUT_MS, 'ping').then(
      () => true,
      () => false,
    );
    if (answered) {
      host.lastAnswer = Date.now();
      return;
    }
    if (Date.now() - host.lastAnswer < this.config.dockerHostTimeoutMs) return;
    host.up = false;
    host.events?.destroy?.();
    host.events = null;
    const lost = [...this.workers.values()].filter((w) => w.host === host.name);
    this.log.error({ host: host.name, workers: lost.map((w) => w.workerId), silentMs: Date.now() - host.lastAnswer }, 'Docker host lost: its workers are replaced on the others');
    this.markLost(
      host.name,
      lost.map((w) => w.workerId),
    );
    for (const worker of lost) {
      this.workers.delete(worker.workerId);
      this.lastHost.delete(worker.workerId);
      this.emit('exit', worker, `host ${host.name} lost (its Docker daemon did not answer for ${this.config.dockerHostTimeoutMs} ms)`, true);
    }
  }

  /** Workers that may still run on a host that does not answer: removed when it returns (clearLeftovers). */
  private markLost(hostName: string, workerIds: string[]): void {
    this.lostOn.set(hostName, new Set([...(this.lostOn.get(hostName) ?? []), ...workerIds]));
  }

  private hostNamed(name: string | null): Host | undefined {
    return this.hosts.find((h) => h.name === name);
  }

  /**
   * The running container of a worker on the hosts given. `complete` is false when a
   * host's listing failed, so the worker may run where nobody looked.
   */
  private async findContainer(workerId: string, hosts: Host[]): Promise<{ found: { host: Host; id: string } | null; complete: boolean }> {
    let complete = true;
    for (const host of hosts) {
      const [container] = await host.docker
        .listContainers({ filters: { label: [`${CLUSTER_LABEL}=${this.cluster}`, `${WORKER_LABEL}=${workerId}`], status: ['running'] } })
        .catch((err: Error) => {
          this.log.warn({ err, host: host.name }, 'could not list containers');
          complete = false;
          return [];
        });
      if (container) return { found: { host, id: container.Id }, complete };
    }
    return { found: null, complete };
  }

  async adopt(worker: RuntimeWorker): Promise<Adoption> {
    // Its recorded host first, then every other usable one.
    const ordered = [...this.hosts].sort((a, b) => Number(b.name === worker.host) - Number(a.name === worker.host)).filter((h) => h.up);
    const { found, complete } = await this.findContainer(worker.workerId, ordered);
    if (!found) {
      // Where it ran cannot be looked at (its host is down, a listing failed): it may run
      // there still. Removed like a lost host's workers when that host answers again.
      const home = this.hostNamed(worker.host);
      const unseen = !complete || (home ? !home.up : this.hosts.some((h) => !h.up));
      if (!unseen) return 'gone';
      if (home) this.markLost(home.name, [worker.workerId]);
      return 'unreachable';
    }
    const info = await found.host.docker.getContainer(found.id).inspect();
    this.workers.set(worker.workerId, { workerId: worker.workerId, pid: info.State.Pid, containerId: found.id, host: found.host.name });
    this.lastHost.set(worker.workerId, found.host.name);
    return 'adopted';
  }

  private onEvent(host: Host, event: DockerEvent): void {
    const workerId = event.Actor?.Attributes?.[WORKER_LABEL];
    const worker = workerId ? this.workers.get(workerId) : undefined;
    if (!worker || worker.containerId !== event.Actor?.ID) return;
    this.workers.delete(worker.workerId);
    this.emit('exit', worker, `container died (exit code ${event.Actor?.Attributes?.exitCode ?? '?'})`, false);
    void this.remove(host, worker.containerId);
  }

  /** Force-removes a container (killing it); true once it is gone, false if it may still run. */
  private async remove(host: Host, containerId: string | null): Promise<boolean> {
    if (!containerId) return true;
    return host.docker
      .getContainer(containerId)
      .remove({ force: true })
      .then(
        () => true,
        (err: DockerError) => {
          if (err.statusCode === 404) return true;
          // 409: a removal already under way, so not yet surely stopped.
          if (err.statusCode !== 409) this.log.warn({ err, containerId, host: host.name }, 'could not remove container');
          return false;
        },
      );
  }

  async spawn(spec: WorkerSpec): Promise<RuntimeWorker> {
    const placed = new Map([...this.workers.values()].map((w) => [w.workerId, w.host ?? '']));
    const hostName = placeWorker(this.upHosts(), placed, spec.workerId, this.lastHost.get(spec.workerId) ?? null);
    const host = this.hostNamed(hostName);
    if (!host) throw new Error(`no Docker host is usable (${this.hosts.map((h) => h.name).join(', ')} do not answer)`);
    // Each life of a worker gets its own container name: the previous container may still
    // be being removed when its replacement starts.
    const name = `ridedb-${this.cluster}-${spec.workerId}-${Date.now().toString(36)}`;
    const mounts = this.dedicated ? [await workerVolumeMount(host.docker, this.config, spec.workerId)] : [];
    const container = await host.docker.createContainer({
      Image: this.config.workerImage,
      name,
      Env: Object.entries({ ...spec.env, WORKER_ID: spec.workerId, WORKER_HOST: host.name }).map(([k, v]) => `${k}=${v}`),
      Labels: { [CLUSTER_LABEL]: this.cluster, [WORKER_LABEL]: spec.workerId },
      HostConfig: { NetworkMode: 'host', PidMode: 'host', Mounts: mounts },
    });
    await container.start();
    const info = await container.inspect();
    const worker: RuntimeWorker = { workerId: spec.workerId, pid: info.State.Pid, containerId: container.id, host: host.name };
    this.workers.set(spec.workerId, worker);
    this.lastHost.set(spec.workerId, host.name);
    return worker;
  }

  async kill(target: RuntimeWorker): Promise<void> {
    const workerId = target.workerId;
    const known = this.workers.get(workerId);
    // A gateway that does not orchestrate knows no containers: find it by its labels.
    const found =
      known?.containerId && this.hostNamed(known.host)
        ? { host: this.hostNamed(known.host) as Host, id: known.containerId }
        : (
            await this.findContainer(
              workerId,
              this.hosts.filter((h) => h.up),
            )
          ).found;
    if (!found) return;
    await found.host.docker
      .getContainer(found.id)
      .kill({ signal: 'SIGKILL' })
      .catch((err: Error) => this.log.warn({ err, workerId, host: found.host.name }, 'kill failed'));
  }

  list(): RuntimeWorker[] {
    return [...this.workers.values()];
  }

  async stopAll(): Promise<void> {
    if (this.checker) clearInterval(this.checker);
    await Promise.all(
      [...this.workers.values()].map(async (w) => {
        const host = this.hostNamed(w.host);
        if (!host) return;
        await host.docker
          .getContainer(w.containerId ?? '')
          .stop({ t: STOP_GRACE_SECONDS })
          .catch((err: DockerError) => {
            if (err.statusCode !== 304 && err.statusCode !== 404) this.log.warn({ err, workerId: w.workerId }, 'stop failed');
          });
        await this.remove(host, w.containerId);
      }),
    );
    // Containers labelled for this cluster that this process did not start (an earlier gateway's).
    await Promise.all(
      this.hosts
        .filter((h) => h.up)
        .map(async (host) => {
          const leftovers = await host.docker.listContainers({ all: true, filters: { label: [`${CLUSTER_LABEL}=${this.cluster}`] } });
          await Promise.all(leftovers.map((c) => this.remove(host, c.Id)));
        }),
    );
    for (const host of this.hosts) host.events?.destroy?.();
  }
}
