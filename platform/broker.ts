import amqp, { type ChannelModel } from 'amqplib';

/**
 * The broker connection of every ridedb process, in one place. `AMQP_URL` names one
 * RabbitMQ node or several (a cluster), comma-separated; a process connects to any live
 * one and, when that connection dies, its owner reconnects through here and lands on
 * another. amqplib has no failover of its own. (amqp-connection-manager would bring one,
 * but it re-creates channels and consumers behind the caller's back; ridedb's processes
 * must know when their link broke — requests in flight fail, a worker fail-stops — so
 * they keep their own reconnect loops and share this.)
 */

/** How long one node may take to accept a connection before the next is tried. */
const CONNECT_TIMEOUT_MS = 5000;
const BACKOFF_MS = [100, 250, 500, 1000, 2000, 5000];

const entries = (amqpUrl: string) =>
  amqpUrl
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);

/** What is wrong with an `AMQP_URL`, or null (credentials left out of the message). */
export function brokerNodesProblem(amqpUrl: string): string | null {
  const nodes = entries(amqpUrl);
  if (!nodes.length) return 'AMQP_URL names no RabbitMQ node';
  for (const node of nodes) {
    const protocol = URL.canParse(node) ? new URL(node).protocol : null;
    if (protocol !== 'amqp:' && protocol !== 'amqps:') return `AMQP_URL entry is not an amqp:// or amqps:// URL: ${node.replace(/\/\/[^@/]*@/, '//…@')}`;
  }
  return null;
}

/** The nodes of `AMQP_URL`, in the order given. */
export function brokerNodes(amqpUrl: string): string[] {
  const problem = brokerNodesProblem(amqpUrl);
  if (problem) throw new Error(problem);
  return entries(amqpUrl);
}

/** Every node once, starting at `first`: processes spread over a cluster's nodes. */
export function connectOrder<T>(nodes: readonly T[], first: number): T[] {
  return nodes.map((_, i) => nodes[(first + i) % nodes.length]);
}

/** Wait before reconnect attempt `attempt` (0-based): growing, and jittered by ±50 % so processes cut off together do not return in step. */
export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  return Math.round(BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)] * (0.5 + random()));
}

/**
 * Opens the process's AMQP connection to the first node of `AMQP_URL` that accepts it,
 * trying each once from a random one. TCP_NODELAY matters: without it Nagle's algorithm
 * and delayed ACKs add ~40 ms to every small RPC message. `name` is the connection's name
 * as RabbitMQ shows it (client property `connection_name` in `rabbitmqctl list_connections
 * client_properties`, the management UI): schema/names.ts names every one after its cluster.
 */
export async function connectBroker(amqpUrl: string, name: string): Promise<ChannelModel> {
  const nodes = brokerNodes(amqpUrl);
  const failures: string[] = [];
  for (const node of connectOrder(nodes, Math.floor(Math.random() * nodes.length))) {
    try {
      return await amqp.connect(node, { noDelay: true, timeout: CONNECT_TIMEOUT_MS, clientProperties: { connection_name: name } });
    } catch (err) {
      failures.push(`${new URL(node).host}: ${(err as Error).message}`);
    }
  }
  throw new Error(`no RabbitMQ node accepted a connection (${failures.join('; ')})`);
}
