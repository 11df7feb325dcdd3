// The device tunnel address plan (DESIGN.md, "Address plan"): every device gets one IPv4 address from
// 100.64.0.0/11 and one IPv6 address from fd00:2021:1111::/107. Both ranges hold 2^21 addresses, so
// one offset names a pair: offset n is 100.64.0.0 + n and fd00:2021:1111:: + n.
//
// Allocation is random, not sequential: a portal node cannot know which offsets other nodes are
// handing out at this moment, so it picks one at random and lets the database's unique indexes on
// (account_id, ipv4) and (account_id, ipv6) decide; a collision is retried with another offset.

import { randomInt } from "node:crypto";

export const TUNNEL_IPV4_RANGE = "100.64.0.0/11";
export const TUNNEL_IPV6_RANGE = "fd00:2021:1111::/107";
/** Host bits of both ranges: 32 - 11 = 128 - 107. */
export const TUNNEL_OFFSET_BITS = 21;
const TUNNEL_IPV4_BASE = (100 << 24) | (64 << 16);

/**
 * Offsets a device may get: all but the first (100.64.0.0, fd00:2021:1111::, the ranges' network
 * addresses) and the last (100.95.255.255, the /11's broadcast address).
 */
export const FIRST_DEVICE_OFFSET = 1;
export const LAST_DEVICE_OFFSET = 2 ** TUNNEL_OFFSET_BITS - 2;

export interface TunnelAddresses {
  ipv4: string;
  ipv6: string;
}

/** The addresses at `offset` in both ranges, in the text form PostgreSQL's inet gives back. */
export function tunnelAddresses(offset: number): TunnelAddresses {
  if (!Number.isInteger(offset) || offset < 0 || offset >= 2 ** TUNNEL_OFFSET_BITS) throw new RangeError(`tunnel address offset ${offset} is outside the /11`);
  const v4 = (TUNNEL_IPV4_BASE + offset) >>> 0;
  const ipv4 = [v4 >>> 24, (v4 >>> 16) & 0xff, (v4 >>> 8) & 0xff, v4 & 0xff].join(".");
  const high = offset >>> 16;
  const low = offset & 0xffff;
  // fd00:2021:1111:0:0:0:high:low, with the zero run compressed as RFC 5952 (and inet) write it.
  const ipv6 = high === 0 ? `fd00:2021:1111::${low.toString(16)}` : `fd00:2021:1111::${high.toString(16)}:${low.toString(16)}`;
  return { ipv4, ipv6 };
}

/** Where a device's next addresses come from: a random offset between two bounds. */
export class TunnelAddressPool {
  constructor(
    readonly first: number = FIRST_DEVICE_OFFSET,
    readonly last: number = LAST_DEVICE_OFFSET,
    private readonly random: (min: number, maxExclusive: number) => number = randomInt,
  ) {
    if (!(Number.isInteger(first) && Number.isInteger(last) && FIRST_DEVICE_OFFSET <= first && first <= last && last <= LAST_DEVICE_OFFSET)) {
      throw new RangeError(`tunnel address pool ${first}..${last} is not within ${FIRST_DEVICE_OFFSET}..${LAST_DEVICE_OFFSET}`);
    }
  }

  /** Addresses to try for a new device; the database's unique indexes say whether they were free. */
  pick(): TunnelAddresses {
    return tunnelAddresses(this.random(this.first, this.last + 1));
  }
}
