import type { RpcReply } from '../../schema';
import { REPLIES_MESSAGE_BYTES, replyMessages } from '../../worker/rpcReply';

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

  it('send a single reply as it is, however large', () => {
    expect(replyMessages([reply('a', REPLIES_MESSAGE_BYTES + 1)]).map(idsOf)).toEqual([['a']]);
  });
});
