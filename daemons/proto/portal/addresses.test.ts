// The address parsers against node:net's isIPv4/isIPv6 on seeded random text, plus the edges.

import { isIPv4, isIPv6 } from "node:net";
import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import { isCidr, isIpv4, isIpv6, isPortText, isSocketAddress } from "./addresses.js";

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
});
