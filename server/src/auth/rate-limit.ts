// Requests per token: a token bucket per token id, refilled continuously. In memory, per portal node:
// a node protects itself and its database share; with N nodes a token's ceiling is N times the rate,
// which is a bound on abuse, not an accounting of it.

export interface RateLimitOptions {
  /** Requests a token may make at once after being idle. */
  burst: number;
  /** Requests per second a token may sustain. */
  perSecond: number;
}

export const DEFAULT_RATE_LIMIT: RateLimitOptions = { burst: 200, perSecond: 50 };

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly options: RateLimitOptions = DEFAULT_RATE_LIMIT,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(options.burst >= 1) || !(options.perSecond > 0)) throw new RangeError("rate limit needs burst >= 1 and perSecond > 0");
  }

  /** Takes one request for `key`: 0 when allowed, else the seconds until one would be. */
  take(key: string): number {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.options.burst, at: now };
    bucket.tokens = Math.min(this.options.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.options.perSecond);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      if (this.buckets.size > 100_000) this.forgetFull(now);
      return 0;
    }
    return (1 - bucket.tokens) / this.options.perSecond;
  }

  /** Drops buckets that have refilled: they hold nothing a new bucket would not. */
  private forgetFull(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.options.perSecond >= this.options.burst) this.buckets.delete(key);
    }
  }
}
