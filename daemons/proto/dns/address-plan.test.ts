// The address plan: sentinels both ways, the proxy IP pool's order and the ranges it skips, and
// reverse names of both families.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import { canonicalIp, formatIp, isProxyIp, ProxyIpPool, sentinelAddresses, sentinelIndex, sentinelIndexOfBytes } from "./address-plan.js";
import { parseIp } from "../ip/address.js";
import { SENTINELS_MAX } from "./constants.js";
import { addressOfReverseName, reverseNameOf } from "./reverse-name.js";
import { parseName } from "./name.js";

beforeEach(reportSeedOnFailure);

describe("sentinels", () => {
  it("sentinelIndexOfBytes answers as sentinelIndex does on the text, at the ranges' edges and at random", () => {
    const random = rng("sentinel-bytes");
    const edges = [
      "100.100.111.0", "100.100.111.1", "100.100.111.255", "100.100.110.255", "100.100.112.0", "100.100.111.128", "228.100.111.1", "0.0.0.0",
      "fd00:2021:1111:8000:100:100:111:0", "fd00:2021:1111:8000:100:100:111:1", "fd00:2021:1111:8000:100:100:111:ff",
      "fd00:2021:1111:8000:100:100:111:100", "fd00:2021:1111:8000:100:100:110:ff", "fd00:2021:1111:8000:100:100:111:80", "::",
    ].map((text) => parseIp(text)!);
    const near = (base: Uint8Array): Uint8Array => {
      const out = base.slice();
      out[out.length - 1] = random.int(0, 255);
      if (random.int(0, 3) === 0) out[random.int(0, out.length - 1)]! ^= 1 << random.int(0, 7);
      return out;
    };
    const samples = [...edges, ...Array.from({ length: 2000 }, (_, i) => (i % 2 === 0 ? near(edges[1]!) : near(edges[9]!))), ...Array.from({ length: 500 }, () => random.bytes(random.int(0, 1) === 0 ? 4 : 16))];
    let hits = 0;
    for (const bytes of samples) {
      const expected = sentinelIndex(formatIp(bytes));
      expect(sentinelIndexOfBytes(bytes), formatIp(bytes)).toBe(expected);
      if (expected !== undefined) hits++;
    }
    expect(hits).toBeGreaterThan(1000);
    expect(sentinelIndexOfBytes(new Uint8Array(5))).toBeUndefined();
  });

  it("sentinel i is host 1 + i of both ranges", () => {
    const { ipv4, ipv6 } = sentinelAddresses(3);
    expect(ipv4).toEqual(["100.100.111.1", "100.100.111.2", "100.100.111.3"]);
    expect(ipv6).toEqual(["fd00:2021:1111:8000:100:100:111:1", "fd00:2021:1111:8000:100:100:111:2", "fd00:2021:1111:8000:100:100:111:3"]);
    expect(sentinelAddresses(1000).ipv4).toHaveLength(SENTINELS_MAX);
    expect(sentinelAddresses(1000).ipv4.at(-1)).toBe("100.100.111.255");
  });

  it.each([
    ["100.100.111.1", 0],
    ["100.100.111.255", 254],
    ["fd00:2021:1111:8000:100:100:111:1", 0],
    ["FD00:2021:1111:8000:0100:0100:0111:00ff", 254],
    ["100.100.111.0", undefined],
    ["fd00:2021:1111:8000:100:100:111:0", undefined],
    ["fd00:2021:1111:8000:100:100:111:100", undefined],
    ["100.100.112.1", undefined],
    ["nonsense", undefined],
  ])("%s is sentinel %s", (address, index) => {
    expect(sentinelIndex(address)).toBe(index);
  });
});

describe("proxy IPs", () => {
  it("are handed out in order from the second address of each range", () => {
    const pool = new ProxyIpPool();
    expect(pool.take(4, 4)).toEqual(["100.96.0.1", "100.96.0.2", "100.96.0.3", "100.96.0.4"]);
    expect(pool.take(6, 2)).toEqual(["fd00:2021:1111:8000::1", "fd00:2021:1111:8000::2"]);
    expect(pool.take(4, 1)).toEqual(["100.96.0.5"]);
  });

  it("skip the IPv4 sentinel range inside 100.96.0.0/11 and end with the range", () => {
    const pool = new ProxyIpPool();
    // 100.100.111.0 is offset (4 << 16) + (111 << 8) from 100.96.0.0; take everything before it.
    const before = (4 << 16) + (111 << 8) - 1;
    const first = pool.take(4, before)!;
    expect(first.at(-1)).toBe("100.100.110.255");
    expect(pool.take(4, 1)).toEqual(["100.100.112.0"]);
    expect(pool.take(4, 2 ** 21 - before - 1 - 256 - 1)!.at(-1)).toBe("100.127.255.255");
    expect(pool.take(4, 1)).toBeUndefined();
  });

  it("isProxyIp knows both ranges and leaves the sentinels out", () => {
    expect(isProxyIp("100.96.0.0")).toBe(true);
    expect(isProxyIp("100.127.255.255")).toBe(true);
    expect(isProxyIp("100.128.0.0")).toBe(false);
    expect(isProxyIp("100.100.111.1")).toBe(false);
    expect(isProxyIp("fd00:2021:1111:8000::1f:ffff")).toBe(true);
    expect(isProxyIp("fd00:2021:1111:8000::20:0")).toBe(false);
    expect(isProxyIp("192.0.2.1")).toBe(false);
  });

  it("canonicalIp writes addresses as RFC 5952 does", () => {
    expect(canonicalIp("FD00:2021:1111:8000:0:0:0:1")).toBe("fd00:2021:1111:8000::1");
    expect(canonicalIp("10.0.0.1")).toBe("10.0.0.1");
    expect(canonicalIp("example.com")).toBeUndefined();
  });
});

describe("reverse names", () => {
  it("round trip for random addresses of both families", () => {
    const r = rng("dns reverse names");
    for (let i = 0; i < 500; i++) {
      const bytes = r.bytes(r.bool() ? 4 : 16);
      const labels = reverseNameOf(bytes);
      expect(addressOfReverseName(labels.map((l) => (r.bool() ? l.toUpperCase() : l))), r.where()).toBe(formatIp(bytes));
    }
  });

  it.each([
    ["1.0.96.100.in-addr.arpa", "100.96.0.1"],
    ["1.0.96.100.IN-ADDR.ARPA", "100.96.0.1"],
    [`1.${"0.".repeat(15)}0.0.0.8.1.1.1.1.1.2.0.2.0.0.d.f.ip6.arpa`, "fd00:2021:1111:8000::1"],
    ["0.96.100.in-addr.arpa", undefined],
    ["256.0.96.100.in-addr.arpa", undefined],
    ["01.0.96.100.in-addr.arpa", undefined],
    ["1.0.96.100.in-addr.arpa.example", undefined],
    [`g.${"0.".repeat(31)}ip6.arpa`, undefined],
    [`${"0.".repeat(31)}ip6.arpa`, undefined],
  ])("%s is %s", (name, address) => {
    expect(addressOfReverseName(parseName(name)!)).toBe(address);
  });
});
