// The address plan against independent oracles: node's BlockList for "inside the range", the URL
// parser for the canonical IPv6 text, and BigInt arithmetic for the offset each address stands for.

import { BlockList } from "node:net";
import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import { FIRST_DEVICE_OFFSET, LAST_DEVICE_OFFSET, TunnelAddressPool, tunnelAddresses } from "./tunnel-addresses.js";

beforeEach(reportSeedOnFailure);

const tunnelRanges = (): BlockList => {
  const ranges = new BlockList();
  ranges.addSubnet("100.64.0.0", 11, "ipv4");
  ranges.addSubnet("fd00:2021:1111::", 107, "ipv6");
  return ranges;
};

const ipv4Offset = (text: string): number => text.split(".").reduce((n, part) => n * 256 + Number(part), 0) - (100 * 2 ** 24 + 64 * 2 ** 16);

function ipv6Offset(text: string): bigint {
  const [head, tail] = text.split("::") as [string, string | undefined];
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n) - 0xfd0020211111n * 2n ** 80n;
}

describe("tunnel addresses", () => {
  it("map the ends and the group boundaries of the plan as DESIGN.md writes it", () => {
    expect(tunnelAddresses(FIRST_DEVICE_OFFSET)).toEqual({ ipv4: "100.64.0.1", ipv6: "fd00:2021:1111::1" });
    expect(tunnelAddresses(255)).toEqual({ ipv4: "100.64.0.255", ipv6: "fd00:2021:1111::ff" });
    expect(tunnelAddresses(0xffff)).toEqual({ ipv4: "100.64.255.255", ipv6: "fd00:2021:1111::ffff" });
    expect(tunnelAddresses(0x10000)).toEqual({ ipv4: "100.65.0.0", ipv6: "fd00:2021:1111::1:0" });
    expect(tunnelAddresses(LAST_DEVICE_OFFSET)).toEqual({ ipv4: "100.95.255.254", ipv6: "fd00:2021:1111::1f:fffe" });
    expect(() => tunnelAddresses(2 ** 21)).toThrow(RangeError);
    expect(() => tunnelAddresses(-1)).toThrow(RangeError);
    expect(() => new TunnelAddressPool(0, 10)).toThrow(RangeError);
    expect(() => new TunnelAddressPool(1, 2 ** 21 - 1)).toThrow(RangeError);
  });

  it("property: every offset gives canonical addresses inside both ranges that stand for that offset", () => {
    const r = rng("tunnel addresses");
    const ranges = tunnelRanges();
    for (let i = 0; i < 5000; i++) {
      const offset = i < 2 ? [FIRST_DEVICE_OFFSET, LAST_DEVICE_OFFSET][i]! : r.int(FIRST_DEVICE_OFFSET, LAST_DEVICE_OFFSET);
      const { ipv4, ipv6 } = tunnelAddresses(offset);
      expect(ranges.check(ipv4, "ipv4"), r.where(ipv4)).toBe(true);
      expect(ranges.check(ipv6, "ipv6"), r.where(ipv6)).toBe(true);
      expect(new URL(`http://[${ipv6}]/`).hostname, r.where(ipv6)).toBe(`[${ipv6}]`);
      expect(ipv4Offset(ipv4), r.where(ipv4)).toBe(offset);
      expect(ipv6Offset(ipv6), r.where(ipv6)).toBe(BigInt(offset));
    }
  });

  it("a pool draws offsets only between its bounds", () => {
    const r = rng("tunnel pool");
    const drawn: number[] = [];
    const pool = new TunnelAddressPool(10, 12, (min, max) => {
      const n = r.int(min, max - 1);
      drawn.push(n);
      return n;
    });
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(pool.pick().ipv4);
    expect([...seen].sort()).toEqual(["100.64.0.10", "100.64.0.11", "100.64.0.12"]);
    expect(drawn.every((n) => n >= 10 && n <= 12)).toBe(true);
    const real = new TunnelAddressPool();
    const ranges = tunnelRanges();
    for (let i = 0; i < 100; i++) expect(ranges.check(real.pick().ipv4, "ipv4")).toBe(true);
  });
});
