import type { ConsumeMessage } from 'amqplib';
import { encode, type LogMessage, type WriteEntry } from '../../schema';
import { createLogger, type BatchedAcks } from '../../platform';
import { LogFollower } from '../../gateway/live/logFollower';

const write = (seq: number, epoch: number, username: string): WriteEntry => ({
  kind: 'write',
  epoch,
  seq,
  requestId: `r${seq}e${epoch}`,
  op: 'createUser',
  args: { username },
  result: null,
});
const marker = (epoch: number): LogMessage => ({ kind: 'epoch', epoch, workerId: 'w', markerId: `m${epoch}` });

/** Feeds messages to a follower as its stream consumer would, from offset 0. */
function follow(messages: LogMessage[]): { taken: string[]; restarts: number[] } {
  const taken: string[] = [];
  const restarts: number[] = [];
  const follower = new LogFollower([{ restartAt: (seq) => restarts.push(seq), take: (entry) => taken.push(`${entry.seq}/${entry.epoch}`) }], {
    amqpUrl: '',
    connectionName: '',
    streamQueue: '',
    replayWindowMs: 0,
    log: createLogger('silent', {}),
  });
  const acks: BatchedAcks = { done: () => undefined, flush: () => undefined };
  messages.forEach((m, offset) => {
    const msg = { content: encode(m), properties: { headers: { 'x-stream-offset': offset } } } as unknown as ConsumeMessage;
    follower['read'](acks, msg);
  });
  return { taken, restarts };
}

describe('the gateway’s log follower', () => {
  it('skips a fenced-off master’s late entry met right after the new master’s marker, as replicas do', () => {
    // The old master's batch was confirmed after the new master's marker: never acknowledged.
    const { taken, restarts } = follow([marker(2), write(7, 1, 'late'), write(7, 2, 'real'), write(8, 2, 'next')]);
    expect(taken).toEqual(['7/2', '8/2']);
    expect(restarts).toEqual([7]);
  });

  it('takes entries of the marker’s epoch and newer from its first entry on', () => {
    expect(follow([write(3, 1, 'a'), marker(2), write(4, 2, 'b')]).taken).toEqual(['3/1', '4/2']);
  });
});
