import WebSocket from 'ws';

export interface WsMessage {
  id?: string;
  type: string;
  payload?: unknown;
}

/**
 * A graphql-transport-ws connection driven message by message: what a hostile or careless
 * client can do that graphql-ws' own client never would (thousands of operations, huge
 * messages, abrupt closes).
 */
export class RawSocket {
  private readonly socket: WebSocket;
  private readonly received: WsMessage[] = [];
  private waiters: Array<() => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(url: string, params: Record<string, string>, options: WebSocket.ClientOptions) {
    this.socket = new WebSocket(url, 'graphql-transport-ws', options);
    this.socket.on('message', (data) => {
      this.received.push(JSON.parse((data as Buffer).toString()) as WsMessage);
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) =>
      this.socket.on('close', (code, reason) => {
        resolve({ code, reason: String(reason) });
        for (const w of this.waiters.splice(0)) w();
      }),
    );
    this.socket.on('open', () => this.send({ type: 'connection_init', payload: params }));
    this.socket.on('error', () => {}); // reported through `closed`
  }

  /** A socket that has sent connection_init, acknowledged or not (see `closed`). */
  static connect(httpUrl: string, params: Record<string, string> = {}, options: WebSocket.ClientOptions = {}): RawSocket {
    return new RawSocket(httpUrl.replace(/^http/, 'ws') + '/graphql', params, options);
  }

  static async open(httpUrl: string, params: Record<string, string> = {}, options: WebSocket.ClientOptions = {}): Promise<RawSocket> {
    const socket = RawSocket.connect(httpUrl, params, options);
    await socket.next((m) => m.type === 'connection_ack');
    return socket;
  }

  send(message: WsMessage | string): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  subscribe(id: string, query: string, variables: Record<string, unknown> = {}): void {
    this.send({ id, type: 'subscribe', payload: { query, variables } });
  }

  complete(id: string): void {
    this.send({ id, type: 'complete' });
  }

  /** The first message (received or to come) that matches, removed from the inbox. */
  async next(match: (m: WsMessage) => boolean, timeoutMs = 10_000): Promise<WsMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex(match);
      if (i >= 0) return this.received.splice(i, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0 || this.socket.readyState > WebSocket.OPEN) throw new Error(`no matching message (state ${this.socket.readyState})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.close();
  }

  terminate(): void {
    this.socket.terminate();
  }
}
