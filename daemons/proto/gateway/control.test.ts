import { beforeEach, describe, expect, it } from "vitest";
import { rng, reportSeedOnFailure, type Rng } from "../../../test/support/prng.js";
import { formatIp } from "../ip/address.js";
import { CONTROL_PROXY_IPS_MAX } from "./constants.js";
import { decodeControl, encodeControl, type DnsMappingMessage } from "./control.js";
import { dnsNameMatches as dnsPatternMatches } from "../dns/patterns.js";

beforeEach(reportSeedOnFailure);

const RESOURCE = "0f0e0d0c-0b0a-4908-8706-050403020100";

function randomMessage(r: Rng): DnsMappingMessage {
  const hex = [...r.bytes(16)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const labels = Array.from({ length: r.int(1, 4) }, () => Array.from({ length: r.int(1, 10) }, () => r.pick([..."abcdefghijklmnopqrstuvwxyz0123456789"])).join(""));
  return {
    resource_id: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
    name: labels.join("."),
    proxy_ips: Array.from({ length: r.int(0, CONTROL_PROXY_IPS_MAX) }, () => formatIp(r.bytes(r.bool() ? 4 : 16))),
  };
}

describe("control message codec", () => {
  it("round-trips random messages", () => {
    const r = rng("control round trip");
    for (let n = 0; n < 2000; n++) {
      const message = randomMessage(r);
      const bytes = encodeControl(message)!;
      expect(decodeControl(bytes), r.where(`#${n}`)).toEqual({ ok: true, message });
    }
  });

  it("lays out version 1 as documented", () => {
    const bytes = encodeControl({ resource_id: RESOURCE, name: "a.io", proxy_ips: ["100.96.0.1", "fd00:2021:1111:8000::1"] })!;
    const expected = [1, 1, 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x49, 0x08, 0x87, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00, 4, 97, 46, 105, 111, 2, 4, 100, 96, 0, 1, 6, 0xfd, 0, 0x20, 0x21, 0x11, 0x11, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    expect([...bytes]).toEqual(expected);
  });

  it("refuses with typed errors", () => {
    const good = encodeControl({ resource_id: RESOURCE, name: "a.io", proxy_ips: ["100.96.0.1"] })!;
    expect(decodeControl(good.subarray(0, 1))).toEqual({ ok: false, error: "truncated" });
    expect(decodeControl(Uint8Array.of(2, 1))).toEqual({ ok: false, error: "unsupported_version" });
    expect(decodeControl(Uint8Array.of(1, 9))).toEqual({ ok: false, error: "unknown_type" });
    expect(decodeControl(good.subarray(0, good.length - 1))).toEqual({ ok: false, error: "truncated" });
    expect(decodeControl(Uint8Array.of(...good, 0))).toEqual({ ok: false, error: "trailing_bytes" });
    const upper = good.slice();
    upper[19] = 65;
    expect(decodeControl(upper)).toEqual({ ok: false, error: "bad_name" });
    const family = good.slice();
    family[24] = 5;
    expect(decodeControl(family)).toEqual({ ok: false, error: "bad_address" });
    const many = good.slice();
    many[23] = CONTROL_PROXY_IPS_MAX + 1;
    expect(decodeControl(many)).toEqual({ ok: false, error: "too_many" });
    expect(encodeControl({ resource_id: RESOURCE, name: "*.a.io", proxy_ips: [] })).toBe(undefined);
    expect(encodeControl({ resource_id: "nope", name: "a.io", proxy_ips: [] })).toBe(undefined);
  });

  it("never throws on random or mutated input, and what it accepts re-encodes to the same bytes (fuzz)", () => {
    const r = rng("control fuzz");
    for (let n = 0; n < 20000; n++) {
      let bytes: Uint8Array;
      if (r.bool(0.3)) bytes = r.bytes(r.int(0, 60));
      else {
        bytes = encodeControl(randomMessage(r))!.slice();
        for (let flips = r.int(0, 3); flips > 0; flips--) bytes[r.int(0, bytes.length - 1)] = r.u32() & 0xff;
        if (r.bool(0.2)) bytes = bytes.subarray(0, r.int(0, bytes.length));
      }
      const decoded = decodeControl(bytes);
      if (!decoded.ok) continue;
      const again = encodeControl(decoded.message);
      const same = again !== undefined && again.length === bytes.length && again.every((b, i) => b === bytes[i]);
      if (!same) expect(again, r.where(`#${n}`)).toEqual(bytes);
    }
  });
});

describe("DNS name patterns (server/src/domain/resource-rules.ts semantics)", () => {
  const cases: [string, string, boolean][] = [
    ["example.com", "example.com", true],
    ["example.com", "EXAMPLE.com.", true],
    ["example.com", "a.example.com", false],
    ["*.example.com", "example.com", true],
    ["*.example.com", "a.example.com", true],
    ["*.example.com", "a.b.example.com", false],
    ["a.*.example.com", "a.example.com", false],
    ["a.*.example.com", "a.b.example.com", true],
    ["**.example.com", "example.com", true],
    ["**.example.com", "a.b.c.example.com", true],
    ["**.example.com", "example.org", false],
    ["a.**.example.com", "a.example.com", true],
    ["a.**.example.com", "a.x.y.example.com", true],
    ["web-?.example.com", "web-1.example.com", true],
    ["web-?.example.com", "web-.example.com", false],
    ["web-?.example.com", "web-12.example.com", false],
    ["web*.example.com", "web.example.com", true],
    ["web*.example.com", "web-eu-1.example.com", true],
    ["web*.example.com", "ftp.example.com", false],
    ["w*b.example.com", "w.b.example.com", false],
  ];
  it.each(cases)("%s against %s: %s", (pattern, name, expected) => {
    expect(dnsPatternMatches(pattern, name)).toBe(expected);
  });

  it("stays fast on many ** labels", () => {
    const pattern = Array(20).fill("**").join(".") + ".x";
    expect(dnsPatternMatches(pattern, Array(60).fill("a").join(".") + ".y")).toBe(false);
  });
});
