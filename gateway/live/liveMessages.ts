import { z } from 'zod';
import { areaIdSchema, DbaasError, parseArgs, RECORD_SELECTIONS, type RideChangeRecord, type RideRecord } from '../../schema';
import type { GqlContext } from '../graphql/context';
import { routeKey, type LiveSubscription } from './liveFeed';

/** What a live subscription yields: a message, or the error that ends it (then nothing). */
export type LiveMessage = RideChangeRecord | DbaasError;

const afterSeqSchema = z.number().int().min(0).nullish();
const routeArgs = z
  .object({ source: areaIdSchema, destination: areaIdSchema, afterSeq: afterSeqSchema })
  .refine((a) => a.source !== a.destination, { message: 'source and destination must differ', path: ['destination'] });

/**
 * A subscription's messages as graphql-ws pulls them. Not an async generator: its
 * return() must detach the subscription at once, also while it waits for a change (a
 * generator would only notice at the route's next change). An error that ends the
 * subscription (SLOW_CONSUMER, SNAPSHOT_REQUIRED) is one last message, which the
 * resolver throws, so the client gets it with its code before `complete` and the socket's
 * other subscriptions carry on.
 */
class LiveMessages implements AsyncIterableIterator<LiveMessage> {
  private ended = false;

  constructor(
    private readonly subscription: LiveSubscription,
    private first: RideChangeRecord | null,
  ) {}

  async next(): Promise<IteratorResult<LiveMessage>> {
    if (this.ended) return { done: true, value: undefined };
    if (this.first) {
      const value = this.first;
      this.first = null;
      return { done: false, value };
    }
    try {
      return await this.subscription.next();
    } catch (err) {
      this.ended = true;
      if (err instanceof DbaasError) return { done: false, value: err };
      throw err;
    }
  }

  async return(): Promise<IteratorResult<LiveMessage>> {
    this.ended = true;
    await this.subscription.return();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * `rides(source, destination, afterSeq)`: with afterSeq, the route's changes after it;
 * without, a SNAPSHOT of the route's upcoming rides read at a known seq (one statement
 * with its applied seq), then the changes after that seq. The feed holds the changes
 * that arrive while the snapshot is read, so none falls between the two.
 */
export async function routeMessages(c: GqlContext, args: unknown): Promise<AsyncIterableIterator<LiveMessage>> {
  const a = parseArgs(routeArgs, args);
  const key = routeKey(a.source, a.destination);
  if (a.afterSeq != null) return new LiveMessages(c.live.subscribe(key, a.afterSeq), null);
  const subscription = c.live.subscribe(key);
  try {
    const snapshot = await c.service.selectionAt(c.request, [
      { key: 'rides', field: 'rides', args: { source: a.source, destination: a.destination, first: c.service.pages.defaultSize }, select: RECORD_SELECTIONS.Ride },
    ]);
    const { rides } = JSON.parse(snapshot.data) as { rides: RideRecord[] };
    subscription.startAfter(snapshot.seq);
    return new LiveMessages(subscription, { type: 'SNAPSHOT', seq: snapshot.seq, at: new Date().toISOString(), rideId: null, ride: null, rider: null, rides });
  } catch (err) {
    await subscription.return();
    throw err;
  }
}
