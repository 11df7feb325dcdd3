import { beforeEach, describe, expect, it } from "vitest";
import { rng, reportSeedOnFailure } from "../../../test/support/prng.js";
import { formatIp, parseIp } from "./address.js";
import { onesComplementSum, pseudoHeaderSum } from "./checksum.js";
import { ICMP_ERROR_MAX_LENGTH, IPV6_MINIMUM_MTU, PROTOCOL_ICMP, PROTOCOL_ICMPV6, PROTOCOL_TCP } from "./constants.js";
import { buildIcmpv4Prohibited, buildIcmpv6Prohibited, buildProhibited } from "./icmp.js";
import { parseIpPacket, type IpPacket } from "./packet.js";
import { buildPacket } from "./testing.js";

beforeEach(reportSeedOnFailure);

function view(bytes: Uint8Array): IpPacket {
  const parsed = parseIpPacket(bytes);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.packet;
}

describe("administratively prohibited", () => {
  it("ICMPv4 type 3 code 13 parses back, verifies and quotes the packet", () => {
    const offending = buildPacket({ src: "100.64.0.2", dst: "10.0.0.9", protocol: PROTOCOL_TCP, srcPort: 40000, dstPort: 22 });
    const error = buildIcmpv4Prohibited(parseIp("10.0.0.9")!, offending, view(offending))!;
    const v = view(error);
    expect(v).toMatchObject({ version: 4, srcText: "10.0.0.9", dstText: "100.64.0.2", protocol: PROTOCOL_ICMP, icmpType: 3, icmpCode: 13 });
    expect(onesComplementSum(error, v.payloadOffset, v.length)).toBe(0xffff);
    expect(error.subarray(28)).toEqual(offending);
  });

  it("ICMPv6 type 1 code 1 parses back and verifies with its pseudo-header", () => {
    const offending = buildPacket({ src: "fd00:2021:1111::2", dst: "2001:db8::9", srcPort: 5000, dstPort: 53 });
    const error = buildIcmpv6Prohibited(parseIp("2001:db8::9")!, offending, view(offending))!;
    const v = view(error);
    expect(v).toMatchObject({ version: 6, srcText: "2001:db8::9", dstText: "fd00:2021:1111::2", protocol: PROTOCOL_ICMPV6, icmpType: 1, icmpCode: 1 });
    const initial = pseudoHeaderSum(v.src, v.dst, PROTOCOL_ICMPV6, v.length - 40);
    expect(onesComplementSum(error, 40, v.length, initial)).toBe(0xffff);
    expect(error.subarray(48)).toEqual(offending);
  });

  it("quotes no more than fits in 576 / 1280 bytes, for random sizes", () => {
    const r = rng("icmp sizes");
    for (let n = 0; n < 200; n++) {
      const v4 = r.bool();
      const address = (): string => formatIp(r.bytes(v4 ? 4 : 16));
      const offending = buildPacket({ src: address(), dst: address(), srcPort: 1, dstPort: 2, payload: r.bytes(r.int(0, 1500)) });
      const ov = view(offending);
      const error = buildProhibited(ov.dst, offending, ov)!;
      const v = view(error);
      const max = v4 ? ICMP_ERROR_MAX_LENGTH : IPV6_MINIMUM_MTU;
      expect(error.length, r.where()).toBe(Math.min(max, offending.length + (v4 ? 28 : 48)));
      expect(error.subarray(v4 ? 28 : 48), r.where()).toEqual(offending.subarray(0, error.length - (v4 ? 28 : 48)));
      const initial = v4 ? 0 : pseudoHeaderSum(v.src, v.dst, PROTOCOL_ICMPV6, v.length - 40);
      expect(onesComplementSum(error, v.payloadOffset, v.length, initial), r.where()).toBe(0xffff);
    }
  });

  it("never answers an ICMP error", () => {
    const v4 = buildPacket({ src: "10.0.0.1", dst: "10.0.0.2", icmpType: 3, icmpCode: 1, payload: new Uint8Array(28) });
    expect(buildIcmpv4Prohibited(parseIp("10.0.0.2")!, v4, view(v4))).toBe(undefined);
    const v6 = buildPacket({ src: "fd00::1", dst: "fd00::2", icmpType: 1, icmpCode: 1 });
    expect(buildIcmpv6Prohibited(parseIp("fd00::2")!, v6, view(v6))).toBe(undefined);
    const echo = buildPacket({ src: "fd00::1", dst: "fd00::2", icmpType: 128 });
    expect(buildIcmpv6Prohibited(parseIp("fd00::2")!, echo, view(echo))).toBeInstanceOf(Uint8Array);
  });
});
