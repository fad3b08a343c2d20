import type { EventEmitter } from 'node:events';

/** Events a subscriber may have waiting before it counts as stuck and is ended. */
const MAX_BUFFERED = 1000;

interface Subscriber<T> {
  buffer: T[];
  wake: (() => void) | null;
  ended: boolean;
}

/**
 * One listener on `source` for `topic`, fanned out to any number of async iterators.
 * Each iterator's return() (a completed subscription, a closed socket) detaches it at
 * once, even while it waits for an event; an async generator would only notice at the
 * next event, holding its buffers meanwhile. One listener, however many subscribers, so
 * the emitter never warns of a leak for what is only a busy cluster.
 */
export class EventFanOut<T> {
  private readonly subscribers = new Set<Subscriber<T>>();

  constructor(source: EventEmitter, topic: string) {
    source.on(topic, (event: T) => {
      for (const s of this.subscribers) {
        // A subscriber that stopped reading ends rather than grows without bound.
        if (s.buffer.length >= MAX_BUFFERED) this.end(s);
        else s.buffer.push(event);
        s.wake?.();
      }
    });
  }

  get size(): number {
    return this.subscribers.size;
  }

  private end(s: Subscriber<T>): void {
    s.ended = true;
    s.buffer.length = 0;
    this.subscribers.delete(s);
    s.wake?.();
  }

  /**
   * Attaches on the first next(), not here: type-graphql wraps this iterator in a lazy
   * Repeater, which never asks and never returns when a subscription is completed before
   * it started, so an eager subscriber would stay attached for ever.
   */
  subscribe(): AsyncIterableIterator<T> {
    const s: Subscriber<T> = { buffer: [], wake: null, ended: false };
    const iterator: AsyncIterableIterator<T> = {
      next: async () => {
        if (!s.ended) this.subscribers.add(s);
        while (!s.buffer.length && !s.ended) await new Promise<void>((resolve) => (s.wake = resolve));
        s.wake = null;
        return s.buffer.length ? { done: false, value: s.buffer.shift()! } : { done: true, value: undefined };
      },
      return: async () => {
        this.end(s);
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }
}
