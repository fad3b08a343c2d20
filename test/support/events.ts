import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

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

  constructor(httpUrl: string, types?: string[]) {
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

  connected(): Promise<void> {
    return this.ready;
  }

  async close(): Promise<void> {
    await this.client.dispose();
  }
}
