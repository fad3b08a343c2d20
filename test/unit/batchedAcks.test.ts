import type { Channel, Message } from 'amqplib';
import { batchedAcks, createLogger } from '../../platform';

/** A channel that only records acknowledgements: the rule under test is when they go. */
const recordingChannel = () => {
  const acks: Array<{ tag: number; multiple: boolean }> = [];
  const channel = {
    closed: false,
    ack(msg: Message, multiple = false) {
      if (channel.closed) throw Object.assign(new Error('Channel closed'), { name: 'IllegalOperationError' }); // as amqplib throws it
      acks.push({ tag: msg.fields.deliveryTag, multiple });
    },
  };
  return { acks, channel, asChannel: channel as unknown as Channel };
};
const delivery = (tag: number) => ({ fields: { deliveryTag: tag } }) as unknown as Message;
const log = createLogger('silent', {});

describe('batched acknowledgements', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('one acknowledgement of all before it, once `every` messages are marked', () => {
    const { acks, asChannel } = recordingChannel();
    const batched = batchedAcks(asChannel, 3, 1000, log);
    for (let tag = 1; tag <= 7; tag++) batched.done(delivery(tag));
    expect(acks).toEqual([
      { tag: 3, multiple: true },
      { tag: 6, multiple: true },
    ]);
  });

  it('what is marked goes after `afterMs` from the first mark, or when flushed', () => {
    const { acks, asChannel } = recordingChannel();
    const batched = batchedAcks(asChannel, 100, 50, log);
    batched.done(delivery(1));
    jest.advanceTimersByTime(30);
    batched.done(delivery(2));
    expect(acks).toEqual([]);
    jest.advanceTimersByTime(20);
    expect(acks).toEqual([{ tag: 2, multiple: true }]);
    batched.done(delivery(3));
    batched.flush();
    batched.flush();
    jest.advanceTimersByTime(100);
    expect(acks).toEqual([
      { tag: 2, multiple: true },
      { tag: 3, multiple: true },
    ]);
  });

  it('a channel that closed meanwhile is not acknowledged on, and nothing throws', () => {
    const { acks, channel, asChannel } = recordingChannel();
    const batched = batchedAcks(asChannel, 100, 50, log);
    batched.done(delivery(1));
    channel.closed = true;
    expect(() => jest.advanceTimersByTime(50)).not.toThrow();
    expect(acks).toEqual([]);
  });
});
