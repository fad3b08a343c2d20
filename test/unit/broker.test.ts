import { brokerNodes, brokerNodesProblem, connectOrder, reconnectDelayMs } from '../../platform/broker';
import { loadConfig } from '../../platform/config';

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
