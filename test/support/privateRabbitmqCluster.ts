import { PrivateRabbitmq } from './privateRabbitmq';
import { settleAll } from './privateZookeeper';

/**
 * A RabbitMQ cluster of a test's own: `size` private nodes (privateRabbitmq.ts) sharing
 * one private epmd and one cookie, the others joined to the first with
 * `rabbitmqctl join_cluster`. `amqpUrl` lists every node, as AMQP_URL takes it.
 */
export class PrivateRabbitmqCluster {
  private constructor(readonly nodes: PrivateRabbitmq[]) {}

  get amqpUrl(): string {
    return this.nodes.map((n) => n.url).join(',');
  }

  static async start(size: number): Promise<PrivateRabbitmqCluster> {
    const first = await PrivateRabbitmq.prepare();
    const nodes = [first];
    for (let i = 1; i < size; i++) nodes.push(await PrivateRabbitmq.prepare(first));
    const cluster = new PrivateRabbitmqCluster(nodes);
    try {
      // The shared epmd first, then every node at once (a node boots in ~10–20 s here).
      await first.startEpmd();
      await settleAll(nodes.map((n) => n.start()));
      // One at a time: join_cluster resets the joining node's own (empty) data.
      for (const node of nodes.slice(1)) {
        await node.ctl('stop_app');
        await node.ctl('join_cluster', first.node);
        await node.startApp();
      }
    } catch (err) {
      await cluster.remove();
      throw err;
    }
    return cluster;
  }

  /** A node that runs, to ask about the whole cluster (rabbitmqctl answers cluster-wide), or null. */
  private liveNode(): PrivateRabbitmq | null {
    return this.nodes.find((n) => n.beamPid() !== null) ?? null;
  }

  /** The node holding the AMQP connection named `name` (connectBroker's name), or null: by the AMQP port it was opened on. */
  async nodeOfConnection(name: string): Promise<PrivateRabbitmq | null> {
    const live = this.liveNode();
    if (!live) return null;
    // Cluster-wide; rabbitmqctl 3.10 has no column for the name, so the client properties.
    const out = await live.ctl('list_connections', '--no-table-headers', 'port', 'client_properties');
    const line = out.split('\n').find((l) => l.includes(`{"connection_name","${name}"}`));
    const port = line ? Number(line.split('\t')[0]) : NaN;
    return this.nodes.find((n) => n.port === port) ?? null;
  }

  /** The node leading the quorum queue `queue` (its Raft leader), or null. */
  async leaderOf(queue: string): Promise<PrivateRabbitmq | null> {
    const live = this.liveNode();
    if (!live) return null;
    const out = await live.ctl('list_queues', '--no-table-headers', 'name', 'leader');
    const leader = out
      .split('\n')
      .map((l) => l.split('\t'))
      .find(([name]) => name === queue)?.[1];
    return this.nodes.find((n) => n.node === leader) ?? null;
  }

  /** The queues as a live node sees them (type, Raft leader and members, consumers), for a failure report. */
  async queueReport(): Promise<string> {
    const live = this.liveNode();
    if (!live) return 'no node runs';
    const queues = await live.ctl('list_queues', 'name', 'type', 'leader', 'members', 'online', 'messages', 'consumers');
    const status = await live.ctl('cluster_status');
    return `${queues}\n${status}`;
  }

  /** Every node stopped and removed; the first (whose epmd the others use) last. */
  async remove(): Promise<void> {
    try {
      await settleAll(this.nodes.slice(1).map((n) => n.remove()));
    } finally {
      await this.nodes[0].remove();
    }
  }
}
