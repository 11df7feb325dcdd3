// The gateway's name resolver for DNS resources (GatewayState's `resolve` events): A and AAAA through
// the host's resolvers (or the given servers), both asked at once, each within a timeout. A name with
// no address of a family answers an empty list for it; a failure of both is an error, and
// GatewayState asks again after its retry interval.

import { Resolver } from "node:dns/promises";

export interface ResolverOptions {
  /** Servers as "addr" or "addr:port"; the host's (/etc/resolv.conf) when left out. */
  servers?: readonly string[];
  timeoutMs?: number;
  tries?: number;
}

const NO_ADDRESS = new Set(["ENODATA", "ENOTFOUND"]);

/** Resolves names to their IPv4 and IPv6 addresses. */
export class NameResolver {
  private readonly resolver: Resolver;

  constructor(options: ResolverOptions = {}) {
    this.resolver = new Resolver({ timeout: options.timeoutMs ?? 2_000, tries: options.tries ?? 2 });
    if (options.servers) this.resolver.setServers([...options.servers]);
  }

  /** Every address of the name, IPv4 first; rejects only when neither family could be asked. */
  async resolve(name: string): Promise<string[]> {
    const [v4, v6] = await Promise.allSettled([this.resolver.resolve4(name), this.resolver.resolve6(name)]);
    const settled = (r: PromiseSettledResult<string[]>): string[] | undefined => {
      if (r.status === "fulfilled") return r.value;
      return NO_ADDRESS.has((r.reason as NodeJS.ErrnoException).code ?? "") ? [] : undefined;
    };
    const a = settled(v4);
    const aaaa = settled(v6);
    if (a === undefined && aaaa === undefined) throw new Error(`resolving ${name}: ${String((v4 as PromiseRejectedResult).reason)}`);
    return [...(a ?? []), ...(aaaa ?? [])];
  }

  /** Stops queries in flight. */
  cancel(): void {
    this.resolver.cancel();
  }
}
