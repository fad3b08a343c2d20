import type { ChannelModel, ConsumeMessage } from 'amqplib';
import { encode, type LogMessage, type WriteEntry } from '../../schema';
import { createLogger, type BatchedAcks } from '../../platform';
import { LogFollower, type LogReader } from '../../gateway/live/logFollower';
import { LiveFeed } from '../../gateway/live/liveFeed';
import { liveFeedReader } from '../../gateway/live/rideChanges';

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

const acks: BatchedAcks = { done: () => undefined, flush: () => undefined };
const followerOf = (readers: LogReader[]) => new LogFollower(readers, { amqpUrl: '', connectionName: '', streamQueue: '', replayWindowMs: 0, log: createLogger('silent', {}) });
const delivery = (m: LogMessage, offset: number) => ({ content: encode(m), properties: { headers: { 'x-stream-offset': offset } } }) as unknown as ConsumeMessage;

/** A reader that notes what it is given, and throws on the entry of seq `failOn`. */
function recorder(failOn?: number): LogReader & { taken: string[]; restarts: number[] } {
  const taken: string[] = [];
  const restarts: number[] = [];
  const take = (entry: WriteEntry) => {
    if (entry.seq === failOn) throw new TypeError('unexpected result');
    taken.push(`${entry.seq}/${entry.epoch}`);
  };
  return { taken, restarts, restartAt: (seq) => restarts.push(seq), take };
}

/** Feeds messages to a follower as its stream consumer would, from offset 0. */
function follow(messages: LogMessage[], readers: LogReader[] = [recorder()]): LogFollower {
  const follower = followerOf(readers);
  messages.forEach((m, offset) => follower['read'](acks, delivery(m, offset)));
  return follower;
}

describe('the gateway’s log follower', () => {
  it('skips a fenced-off master’s late entry met right after the new master’s marker, as replicas do', () => {
    // The old master's batch was confirmed after the new master's marker: never acknowledged.
    const reader = recorder();
    follow([marker(2), write(7, 1, 'late'), write(7, 2, 'real'), write(8, 2, 'next')], [reader]);
    expect(reader.taken).toEqual(['7/2', '8/2']);
    expect(reader.restarts).toEqual([7]);
  });

  it('takes entries of the marker’s epoch and newer from its first entry on', () => {
    const reader = recorder();
    follow([write(3, 1, 'a'), marker(2), write(4, 2, 'b')], [reader]);
    expect(reader.taken).toEqual(['3/1', '4/2']);
  });

  it('starts a reader over after an entry it fails on, and goes on for the others', () => {
    const failing = recorder(4);
    const other = recorder();
    follow([write(3, 1, 'a'), write(4, 1, 'b'), write(5, 1, 'c')], [failing, other]);
    expect(failing.taken).toEqual(['3/1', '5/1']);
    expect(failing.restarts).toEqual([3, 5]);
    expect(other.taken).toEqual(['3/1', '4/1', '5/1']);
    expect(other.restarts).toEqual([3]);
  });

  it('ends the live feed’s subscriptions, not the gateway, on a createRide entry whose result is not a ride', () => {
    const feed = new LiveFeed({ historySize: 100, historyBytes: 100_000, bufferSize: 10 });
    const ride: LogMessage = { kind: 'write', epoch: 1, seq: 3, requestId: 'r3', op: 'createRide', args: {}, result: { id: 9 } };
    follow([write(2, 1, 'a'), ride, write(4, 1, 'b')], [liveFeedReader(feed)]);
    expect(feed.oldestResumable).toBe(3);
    expect(feed.headSeq).toBe(4);
  });

  it('reads on from a new connection when the broker cancels its stream consumer', () => {
    const follower = follow([write(3, 1, 'a')]);
    let closed = 0;
    const connection = { close: async () => void closed++ } as unknown as ChannelModel;
    // A cancel while the consumer starts fails that start (it throws, and is retried)…
    const starting = { connection, up: false, ended: null };
    follower['cancelled'](starting);
    expect([starting.ended, closed]).toEqual(['cancelled the stream consumer', 0]);
    // …and one after closes the connection, whose close reconnects from the next offset.
    follower['cancelled']({ connection, up: true, ended: null });
    expect(closed).toBe(1);
    expect(follower['next']).toBe(1);
  });
});
