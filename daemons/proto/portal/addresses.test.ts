// The address parsers against node:net's isIPv4/isIPv6 on seeded random text, plus the edges.

import { isIPv4, isIPv6, SocketAddress } from "node:net";
import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import { formatIp, isCidr, isIpv4, isIpv6, isPortText, isSocketAddress, parseCidr, parseIp } from "./addresses.js";

beforeEach(reportSeedOnFailure);

describe("addresses", () => {
  it("reads the edges", () => {
    for (const good of ["0.0.0.0", "255.255.255.255", "100.64.0.7"]) expect(isIpv4(good), good).toBe(true);
    for (const bad of ["256.0.0.1", "010.0.0.1", "1.2.3", "1.2.3.4.5", "1.2.3.", " 1.2.3.4", "1.2.3.4 ", "", "a.b.c.d", "1.2.3.-4", "+1.2.3.4"]) expect(isIpv4(bad), bad).toBe(false);
    for (const good of ["::", "::1", "1::", "fd00:2021:1111::7", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "ABCD::ef", "1::2:3:4:5:6:7"]) expect(isIpv6(good), good).toBe(true);
    for (const bad of [":", ":::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1::2::3", "12345::", "::g", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3", "1.2.3.4::", "fe80::1%eth0", "[::1]", ":1::", "1::2:3:4:5:6:7:8"]) expect(isIpv6(bad), bad).toBe(false);
    for (const good of ["1", "65535", "3478"]) expect(isPortText(good), good).toBe(true);
    for (const bad of ["0", "65536", "03478", "", "1e3", "-1"]) expect(isPortText(bad), bad).toBe(false);
    for (const good of ["1.2.3.4:5", "[::1]:3478", "[2001:db8::5]:65535"]) expect(isSocketAddress(good), good).toBe(true);
    for (const bad of ["1.2.3.4", "::1:3478", "[1.2.3.4]:5", "1.2.3.4:0", "[::1]", "[::1]:", ":5", "host:5"]) expect(isSocketAddress(bad), bad).toBe(false);
    for (const good of ["10.0.0.0/8", "0.0.0.0/0", "::/0", "fd00::/128", "1.2.3.4/32"]) expect(isCidr(good), good).toBe(true);
    for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0", "10.0.0.0/", "10.0.0.0/08", "/8", "10.0.0.0/8/8"]) expect(isCidr(bad), bad).toBe(false);
  });

  it("agrees with node:net on seeded random text", () => {
    const r = rng("portal/addresses");
    const alphabet = "0123456789abcdefABCDEF:.:.:g ";
    for (let i = 0; i < 20_000; i++) {
      let text = "";
      const length = r.int(0, 40);
      for (let k = 0; k < length; k++) text += alphabet[r.int(0, alphabet.length - 1)];
      expect(isIpv4(text), r.where(JSON.stringify(text))).toBe(isIPv4(text));
      expect(isIpv6(text), r.where(JSON.stringify(text))).toBe(isIPv6(text));
    }
    for (let i = 0; i < 20_000; i++) {
      const groups = Array.from({ length: 8 }, () => r.u32().toString(16).slice(0, r.int(1, 4)));
      const start = r.int(0, 8);
      const end = r.int(start, 8);
      const text = r.bool() ? groups.join(":") : `${groups.slice(0, start).join(":")}::${groups.slice(end).join(":")}`;
      expect(isIpv6(text), r.where(text)).toBe(isIPv6(text));
      const quad = Array.from({ length: 4 }, () => String(r.int(0, 300))).join(".");
      expect(isIpv4(quad), r.where(quad)).toBe(isIPv4(quad));
    }
  });

  it("parses and formats addresses as bytes, agreeing with node:net and RFC 5952", () => {
    expect(parseIp("1.2.3.4")).toEqual(Uint8Array.of(1, 2, 3, 4));
    expect(parseIp("::ffff:1.2.3.4")).toEqual(Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4));
    expect(parseIp("010.0.0.1")).toBeUndefined();
    expect(parseCidr("fd00:2021:1111:8000::/107")).toEqual({ address: parseIp("fd00:2021:1111:8000::"), length: 107 });
    expect(parseCidr("10.0.0.0/33")).toBeUndefined();
    // RFC 5952 §4: the longest run, the first of equal runs, never a single zero group.
    for (const [text, canonical] of [
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
      ["0:0:0:0:0:0:0:0", "::"],
      ["FD00::7", "fd00::7"],
      ["::ffff:102:304", "::ffff:1.2.3.4"],
    ]) expect(formatIp(parseIp(text!)!), text).toBe(canonical);
    const r = rng("portal/addresses bytes");
    for (let i = 0; i < 5_000; i++) {
      const bytes = r.bytes(r.bool() ? 4 : 16);
      // Runs of zero groups, so "::" gets exercised.
      if (bytes.length === 16) for (let g = r.int(0, 7), n = r.int(0, 8); n > 0 && g < 8; g++, n--) bytes.set([0, 0], 2 * g);
      const text = formatIp(bytes);
      expect(parseIp(text), r.where(text)).toEqual(bytes);
      // node:net writes ::a.b.c.d (the deprecated IPv4-compatible form) in dotted quad too; RFC 5952 does not ask for it.
      const compatible = bytes.length === 16 && bytes.subarray(0, 12).every((b) => b === 0);
      const family = bytes.length === 4 ? "ipv4" : "ipv6";
      if (!compatible) expect(text, r.where()).toBe(new SocketAddress({ address: text, family }).address);
    }
  });
});

