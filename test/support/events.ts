import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/** The gateway's `ridedb_subscriptions_open`: subscriptions attached to its event stream. */
export async function openSubscriptions(httpUrl: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('ridedb_subscriptions_open '));
  if (!line) throw new Error('no ridedb_subscriptions_open in /metrics');
  return Number(line.split(' ')[1]);
}

/**
 * Until the gateway counts `n` open subscriptions (`exactly`: no more either, for one that
 * closed): attached, events reach them; detached, they do not count for the next one.
 */
export async function untilSubscriptions(httpUrl: string, n: number, exactly = false, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await openSubscriptions(httpUrl);
    if (exactly ? open === n : open >= n) return;
    if (Date.now() > deadline) throw new Error(`the gateway counts ${open} open subscriptions, not ${exactly ? '' : 'at least '}${n}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const openOn = new Map<string, number>();

export interface ClusterEventSeen {
  type: string;
  workerId: string | null;
  pid: number | null;
  epoch: number | null;
  fromSlaves: number | null;
  toSlaves: number | null;
  reason: string | null;
}

/** A live `clusterEvents` subscription that records everything it receives. */
export class EventRecorder {
  readonly events: ClusterEventSeen[] = [];
  private client: Client;
  private ready: Promise<void>;

  constructor(
    private readonly httpUrl: string,
    types?: string[],
  ) {
    openOn.set(httpUrl, (openOn.get(httpUrl) ?? 0) + 1);
    const url = httpUrl.replace(/^http/, 'ws') + '/graphql';
    let markReady: () => void = () => {};
    this.ready = new Promise((r) => (markReady = r));
    this.client = createClient({ url, webSocketImpl: WebSocket, lazy: false, on: { connected: () => markReady() } });
    this.client.subscribe<{ clusterEvents: ClusterEventSeen }>(
      {
        query: `subscription($types: [ClusterEventType!]) {
          clusterEvents(types: $types) { type at workerId pid epoch fromSlaves toSlaves reason }
        }`,
        variables: { types: types ?? null },
      },
      {
        next: (msg) => {
          if (msg.data) this.events.push(msg.data.clusterEvents);
        },
        error: (err) => {
          const close = err as { code?: number; reason?: string };
          throw new Error(`subscription failed: ${err instanceof Error ? err.message : `socket closed (code ${close.code}, ${close.reason || 'no reason'})`}`);
        },
        complete: () => {},
      },
    );
  }

  /**
   * Once the subscription is attached on the gateway (not only the socket acknowledged):
   * an event emitted after this resolves is recorded.
   */
  async connected(): Promise<void> {
    await this.ready;
    await untilSubscriptions(this.httpUrl, openOn.get(this.httpUrl) ?? 1);
  }

  async close(): Promise<void> {
    const left = (openOn.get(this.httpUrl) ?? 1) - 1;
    openOn.set(this.httpUrl, left);
    await this.client.dispose();
    // A gateway stopped with its cluster has nothing left to count.
    await untilSubscriptions(this.httpUrl, left, true).catch((err: Error) => {
      if (!/fetch failed/.test(err.message)) throw err;
    });
  }
}
