import { brokerNodes, brokerNodesProblem, connectOrder, reconnectDelayMs } from '../../platform/broker';
import { loadConfig, workerEnvironment } from '../../platform/config';
import { queueArguments } from '../../platform/topology';
import { clusterNames } from '../../schema/names';

describe('AMQP_URL with several RabbitMQ nodes', () => {
  it('lists the nodes in the order given, ignoring spaces and empty entries', () => {
    expect(brokerNodes('amqp://a:5672, amqp://b:5673,,amqps://c')).toEqual(['amqp://a:5672', 'amqp://b:5673', 'amqps://c']);
  });

  it('refuses entries that are not AMQP URLs, without echoing credentials', () => {
    expect(brokerNodesProblem('amqp://a:5672,http://u:secret@b')).toMatch(/not an amqp/);
    expect(brokerNodesProblem('amqp://a:5672,http://u:secret@b')).not.toContain('secret');
    expect(brokerNodesProblem(' , ')).toMatch(/no RabbitMQ node/);
    expect(() => loadConfig({ AMQP_URL: 'amqp://a,nonsense' })).toThrow(/AMQP_URL/);
  });

  it('tries every node once, from the one drawn first', () => {
    expect(connectOrder(['a', 'b', 'c'], 1)).toEqual(['b', 'c', 'a']);
    expect(connectOrder(['a'], 0)).toEqual(['a']);
  });

  it('waits longer after each failed attempt, jittered within ±50 %, and no more than ~7.5 s', () => {
    expect(reconnectDelayMs(0, () => 0)).toBe(50);
    expect(reconnectDelayMs(0, () => 0.999)).toBeLessThanOrEqual(150);
    expect(reconnectDelayMs(3, () => 0.5)).toBe(1000);
    expect(reconnectDelayMs(50, () => 0.999)).toBeLessThan(7500);
  });
});

describe('QUEUE_REPLICAS', () => {
  const names = clusterNames('t');
  const byQueue = (replicas: number) => Object.fromEntries(queueArguments(names, { logRetentionBytes: 1e6, queueReplicas: replicas }).map((q) => [q.queue, q.arguments]));

  it('defaults to the number of nodes in AMQP_URL, at most 3', () => {
    expect(loadConfig({}).queueReplicas).toBe(1);
    expect(loadConfig({ AMQP_URL: 'amqp://a,amqp://b' }).queueReplicas).toBe(2);
    expect(loadConfig({ AMQP_URL: 'amqp://a,amqp://b,amqp://c,amqp://d' }).queueReplicas).toBe(3);
    expect(loadConfig({ QUEUE_REPLICAS: '1', AMQP_URL: 'amqp://a,amqp://b' }).queueReplicas).toBe(1);
    expect(workerEnvironment(loadConfig({ AMQP_URL: 'amqp://a,amqp://b' })).QUEUE_REPLICAS).toBe('2');
  });

  it('keeps classic queues and a one-node stream at 1', () => {
    const q = byQueue(1);
    expect(q[names.writeQ]).toEqual({ 'x-single-active-consumer': true });
    expect(q[names.readQ]).toEqual({});
    expect(q[names.syncLog]).not.toHaveProperty('x-initial-cluster-size');
  });

  it('makes every durable queue a quorum queue and replicates the stream above 1', () => {
    const q = byQueue(3);
    for (const queue of [names.writeQ, names.readQ, names.deadLetters]) expect(q[queue]).toMatchObject({ 'x-queue-type': 'quorum', 'x-quorum-initial-group-size': 3 });
    expect(q[names.writeQ]).toMatchObject({ 'x-single-active-consumer': true });
    expect(q[names.syncLog]).toMatchObject({ 'x-queue-type': 'stream', 'x-initial-cluster-size': 3 });
  });
});
