import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { unavailable } from '../schema';
import { clientKey } from './clientKey';

/**
 * Mutations per client address (an IPv6 client by its /64: ./clientKey.ts) per minute
 * (MUTATIONS_PER_MINUTE_PER_IP; 0 = no limit),
 * so one runaway client cannot monopolise the single master. Reads are not limited:
 * slaves scale out.
 */
export class MutationRateLimit {
  private limiter: RateLimiterMemory | null;

  constructor(perMinute: number) {
    this.limiter = perMinute > 0 ? new RateLimiterMemory({ points: perMinute, duration: 60 }) : null;
  }

  async take(clientAddress: string, count = 1): Promise<void> {
    if (!this.limiter || count === 0) return;
    const client = clientKey(clientAddress) || 'unknown';
    try {
      await this.limiter.consume(client, count);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      throw unavailable(`rate limit: too many writes from ${client}; retry in ${Math.ceil(err.msBeforeNext / 1000)} s`);
    }
  }
}
