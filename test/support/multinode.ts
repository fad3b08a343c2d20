import { PrivateDockerHost } from './privateDocker';
import { PrivateRabbitmqCluster } from './privateRabbitmqCluster';
import { PrivateZookeeper, settleAll } from './privateZookeeper';

/**
 * One machine standing in for several (`npm run test:multinode`): a three-node RabbitMQ
 * cluster, a three-server ZooKeeper ensemble and two Docker daemons (the second reached
 * over tcp with TLS client certificates), each private to the run (own ports, data
 * directories, sockets) and on loopback only. `remove()` ends them
 * all, whatever state a fault left them in.
 */
export class MultinodeEnvironment {
  private constructor(
    readonly rabbitmq: PrivateRabbitmqCluster,
    readonly zookeepers: PrivateZookeeper[],
    readonly dockerHosts: PrivateDockerHost[],
  ) {}

  /** The settings of a cluster spread over all of it. */
  get env(): Record<string, string> {
    return {
      AMQP_URL: this.rabbitmq.amqpUrl,
      ZK_HOSTS: this.zookeepers.map((z) => z.hosts).join(','),
      WORKER_RUNTIME: 'docker',
      DOCKER_HOSTS: this.dockerHosts.map((h) => h.entry).join(','),
      // host-b is reached over tcp with TLS client certificates, as a remote daemon would be.
      DOCKER_CERT_PATH: this.dockerHosts[1].certPath,
    };
  }

  static async start(image: string, log: (line: string) => void): Promise<MultinodeEnvironment> {
    const zookeepers = await PrivateZookeeper.prepareEnsemble(3);
    let rabbitmq: PrivateRabbitmqCluster | undefined;
    const dockerHosts: PrivateDockerHost[] = [];
    const began = Date.now();
    try {
      await settleAll([
        PrivateRabbitmqCluster.start(3).then((r) => {
          rabbitmq = r;
          log(`RabbitMQ cluster up (${r.nodes.map((n) => `${n.node} :${n.port}`).join(', ')}) after ${Date.now() - began} ms`);
        }),
        Promise.all(zookeepers.map((z) => z.start())).then(() => log(`ZooKeeper ensemble up (${zookeepers.map((z) => z.hosts).join(', ')}) after ${Date.now() - began} ms`)),
        ...['host-a', 'host-b'].map(async (name) => {
          const host = await PrivateDockerHost.start(name, { tls: name === 'host-b' });
          dockerHosts.push(host);
          await host.loadImage(image);
          log(`Docker host ${name} up with ${image} after ${Date.now() - began} ms`);
        }),
      ]);
      dockerHosts.sort((a, b) => a.name.localeCompare(b.name));
      return new MultinodeEnvironment(rabbitmq as PrivateRabbitmqCluster, zookeepers, dockerHosts);
    } catch (err) {
      await settleAll([rabbitmq?.remove(), ...zookeepers.map((z) => z.remove()), ...dockerHosts.map((h) => h.remove())]);
      throw err;
    }
  }

  /** The ensemble's leader, as its servers say. */
  async zookeeperLeader(): Promise<PrivateZookeeper | null> {
    for (const zk of this.zookeepers) if ((await zk.mode()) === 'leader') return zk;
    return null;
  }

  async remove(): Promise<void> {
    await settleAll([this.rabbitmq.remove(), ...this.zookeepers.map((z) => z.remove()), ...this.dockerHosts.map((h) => h.remove())]);
  }
}

/**
 * The longest time without a success after `from` and until `to`: from the last success
 * before `from` (or `from` itself) to each next one, and to `to` if none came.
 */
export function longestPause(successes: readonly number[], from: number, to: number): number {
  let previous = Math.max(...successes.filter((t) => t <= from), -Infinity);
  if (!Number.isFinite(previous)) previous = from;
  let longest = 0;
  for (const t of successes.filter((s) => s > from && s <= to).sort((a, b) => a - b)) {
    longest = Math.max(longest, t - previous);
    previous = t;
  }
  return Math.max(longest, to - previous);
}
