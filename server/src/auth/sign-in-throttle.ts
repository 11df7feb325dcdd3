// Failed sign-ins per (account, email): at most `limit` in any `windowMs`, then the email is refused
// until the oldest failure ages out, whatever the password. In memory per portal node, like the token
// rate limiter: N nodes allow N times the attempts, a bound on guessing rather than an exact count.

export class SignInThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Seconds until `key` may try again; 0 when it may now. */
  blockedFor(key: string): number {
    const recent = this.recent(key);
    if (recent.length < this.limit) return 0;
    return Math.max(1, Math.ceil((recent[0]! + this.windowMs - this.now()) / 1000));
  }

  /** Counts one failure (or one use, for a throttle of sends). */
  record(key: string): void {
    const recent = this.recent(key);
    recent.push(this.now());
    if (recent.length > this.limit) recent.shift();
    this.failures.set(key, recent);
    if (this.failures.size > 100_000) this.forgetOld();
  }

  /** Forgets `key`'s failures: after a successful sign-in. */
  clear(key: string): void {
    this.failures.delete(key);
  }

  private recent(key: string): number[] {
    const since = this.now() - this.windowMs;
    return (this.failures.get(key) ?? []).filter((at) => at > since);
  }

  private forgetOld(): void {
    for (const key of [...this.failures.keys()]) if (this.recent(key).length === 0) this.failures.delete(key);
  }
}

export const SIGN_IN_THROTTLES = Symbol("SIGN_IN_THROTTLES");

export interface SignInThrottles {
  /** Wrong passwords and codes per (account, email). */
  failures: SignInThrottle;
  /** Sign-in codes mailed per (account, email), so the route cannot be used to flood a mailbox. */
  mails: SignInThrottle;
}

export const signInThrottles = (): SignInThrottles => ({
  failures: new SignInThrottle(10, 15 * 60_000),
  mails: new SignInThrottle(5, 15 * 60_000),
});
