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
  /** Per-request memo, so sibling fields share one RPC. */
  memo: Map<string, Promise<unknown>>;
}
