import { OperationTypeNode, type GraphQLResolveInfo } from 'graphql';
import type { Autoscaler } from '../autoscaler';
import type { LiveFeed } from '../live/liveFeed';
import type { Orchestrator } from '../orchestrator';
import type { RequestCounter } from '../requestAccounting';
import type { RequestContext, RideService } from '../service';

/** What every resolver gets: the request's own context and the gateway's parts. */
export interface GqlContext {
  request: RequestContext;
  service: RideService;
  autoscaler: Autoscaler;
  orchestrator: Orchestrator;
  counter: RequestCounter;
  /** Ride changes read from the log, for live subscriptions. */
  live: LiveFeed;
  /** Per-request memo, so sibling fields share one RPC (read it through memoOf). */
  memo: Map<string, Promise<unknown>>;
  /** A subscription's memos, one per event (its root value). */
  eventMemos: WeakMap<object, Map<string, Promise<unknown>>>;
}

/**
 * The memo of the execution a resolver runs in. A subscription's context lasts as long as
 * the subscription, so each of its events gets its own: one memo for all of them would
 * serve every event the first event's reads (a user's rides as they were), failed ones
 * too, and grow with every user seen.
 */
export function memoOf(c: GqlContext, info: GraphQLResolveInfo): Map<string, Promise<unknown>> {
  const root: unknown = info.rootValue;
  if (info.operation.operation !== OperationTypeNode.SUBSCRIPTION || typeof root !== 'object' || root === null) return c.memo;
  let memo = c.eventMemos.get(root);
  if (!memo) {
    memo = new Map();
    c.eventMemos.set(root, memo);
  }
  return memo;
}

/**
 * The request a resolver reads for. A live change (seq S) can reach the gateway from the
 * log before the write's own reply does, so its event's reads ask for S at least: a
 * creator's rides then include the ride the change is about.
 */
export function requestOf(c: GqlContext, info: GraphQLResolveInfo): RequestContext {
  const seq = (info.rootValue as { seq?: unknown } | null | undefined)?.seq;
  if (info.operation.operation !== OperationTypeNode.SUBSCRIPTION || typeof seq !== 'number' || seq <= c.request.clientMinSeq) return c.request;
  return { ...c.request, clientMinSeq: seq };
}
