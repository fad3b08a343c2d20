import type { Channel, ConsumeMessage } from 'amqplib';
import type { RpcReply } from '../../schema';
import { createLogger } from '../../platform';
import { MAX_REPLY_MESSAGE_BYTES, REPLIES_MESSAGE_BYTES, ReplySender, replyMessages } from '../../worker/rpcReply';

const reply = (id: string, bytes: number): RpcReply => ({ id, ok: true, workerId: 'w1', appliedSeq: 7, result: 'x'.repeat(bytes) });
const idsOf = (message: Buffer) => (JSON.parse(message.toString()) as { replies: RpcReply[] }).replies.map((r) => r.id);

describe("a worker's reply messages", () => {
  it('carry one gateway’s replies together while they are small', () => {
    const messages = replyMessages([reply('a', 10), reply('b', 10), reply('c', 10)]);
    expect(messages.map(idsOf)).toEqual([['a', 'b', 'c']]);
  });

  it('go one a reply, in order, when together they would pass the bound', () => {
    const third = Math.ceil(REPLIES_MESSAGE_BYTES / 3);
    const messages = replyMessages([reply('a', third), reply('b', third), reply('c', third), reply('d', 10)]);
    expect(messages.map(idsOf)).toEqual([['a'], ['b'], ['c'], ['d']]);
  });

  it('send a single reply as it is, however large, up to what a message may be', () => {
    expect(replyMessages([reply('a', REPLIES_MESSAGE_BYTES + 1)]).map(idsOf)).toEqual([['a']]);
  });

  it('send a reply too large for a message as an error in its place, alone or among others', () => {
    const decoded = (message: Buffer) => (JSON.parse(message.toString()) as { replies: RpcReply[] }).replies;
    for (const replies of [[reply('a', MAX_REPLY_MESSAGE_BYTES)], [reply('a', MAX_REPLY_MESSAGE_BYTES), reply('b', 10)]]) {
      const messages = replyMessages(replies);
      expect(messages.every((m) => m.length <= MAX_REPLY_MESSAGE_BYTES)).toBe(true);
      const [first] = decoded(messages[0]);
      expect(first).toMatchObject({ id: 'a', ok: false, error: { code: 'BAD_USER_INPUT' } });
      if (replies.length > 1) expect(decoded(messages[1])).toEqual([replies[1]]);
    }
  });
});

describe("a worker's reply sender", () => {
  it('acknowledges a request only after the replies sent before it, so no request is acknowledged and unanswered', async () => {
    const frames: string[] = [];
    const channel = {
      sendToQueue: (queue: string, message: Buffer) => void frames.push(`reply to ${queue}: ${idsOf(message).join(',')}`),
      ack: (msg: ConsumeMessage, allUpTo?: boolean) => void frames.push(`ack ${msg.fields.deliveryTag}${allUpTo ? ' and before' : ''}`),
    } as unknown as Channel;
    const sender = new ReplySender(channel, createLogger('silent', {}));
    const delivery = (tag: number) => ({ fields: { deliveryTag: tag } }) as ConsumeMessage;
    sender.send('g1', reply('a', 1));
    sender.send('g1', reply('b', 1));
    sender.ack(delivery(1));
    sender.send('g2', reply('c', 1));
    sender.ack(delivery(3), true);
    expect(frames).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(frames).toEqual(['reply to g1: a,b', 'reply to g2: c', 'ack 1', 'ack 3 and before']);
  });
});
