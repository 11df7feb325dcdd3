import { beforeEach, describe, expect, it } from "vitest";
import { rng, reportSeedOnFailure } from "../../../test/support/prng.js";
import { formatIp, parseIp, parsePrefix, prefixContains } from "./address.js";
import { PROTOCOL_ICMP, PROTOCOL_ICMPV6, PROTOCOL_TCP, PROTOCOL_UDP } from "./constants.js";
import { parseIpPacket } from "./packet.js";
import { fillIpv4HeaderChecksum } from "./rewrite.js";
import { buildPacket } from "./testing.js";

beforeEach(reportSeedOnFailure);

describe("parseIpPacket", () => {
  it("reads an IPv4 TCP packet", () => {
    const bytes = buildPacket({ src: "100.64.0.2", dst: "10.1.2.3", protocol: PROTOCOL_TCP, srcPort: 40000, dstPort: 443, tcpFlags: 0x02, payload: new Uint8Array(5) });
    const parsed = parseIpPacket(bytes);
    expect(parsed).toMatchObject({
      ok: true,
      packet: { version: 4, srcText: "100.64.0.2", dstText: "10.1.2.3", protocol: 6, headerLength: 20, payloadOffset: 20, length: 45, srcPort: 40000, dstPort: 443, tcpFlags: 2, fragmentOffset: 0, moreFragments: false },
    });
  });

  it("reads IPv6 UDP and ICMPv6 echo", () => {
    const udp = parseIpPacket(buildPacket({ src: "fd00:2021:1111::2", dst: "2001:db8::1", srcPort: 5353, dstPort: 53 }));
    expect(udp).toMatchObject({ ok: true, packet: { version: 6, srcText: "fd00:2021:1111::2", dstText: "2001:db8::1", protocol: 17, headerLength: 40, srcPort: 5353, dstPort: 53 } });
    const echo = parseIpPacket(buildPacket({ src: "fd00::2", dst: "2001:db8::1", icmpType: 128, icmpIdentifier: 77 }));
    expect(echo).toMatchObject({ ok: true, packet: { protocol: PROTOCOL_ICMPV6, icmpType: 128, icmpCode: 0, icmpIdentifier: 77 } });
  });

  it("reads ICMPv4 without an identifier unless it is an echo", () => {
    const unreachable = parseIpPacket(buildPacket({ src: "10.0.0.1", dst: "10.0.0.2", icmpType: 3, icmpCode: 1 }));
    expect(unreachable.ok && unreachable.packet.icmpIdentifier).toBe(undefined);
    const echo = parseIpPacket(buildPacket({ src: "10.0.0.1", dst: "10.0.0.2", icmpType: 8, icmpIdentifier: 9 }));
    expect(echo).toMatchObject({ ok: true, packet: { protocol: PROTOCOL_ICMP, icmpType: 8, icmpIdentifier: 9 } });
  });

  it("reports an IPv6 extension header as the protocol, without ports", () => {
    const bytes = buildPacket({ src: "fd00::2", dst: "fd00::3", protocol: 0, payload: new Uint8Array(8) });
    const parsed = parseIpPacket(bytes);
    expect(parsed).toMatchObject({ ok: true, packet: { protocol: 0 } });
    expect(parsed.ok && parsed.packet.srcPort).toBe(undefined);
  });

  it("ignores link padding after Total Length", () => {
    const bytes = buildPacket({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 1, dstPort: 2 });
    const padded = new Uint8Array(bytes.length + 6);
    padded.set(bytes);
    expect(parseIpPacket(padded)).toMatchObject({ ok: true, packet: { length: bytes.length } });
  });

  it("returns typed errors", () => {
    const good = buildPacket({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 1, dstPort: 2, payload: new Uint8Array(4) });
    expect(parseIpPacket(new Uint8Array(0))).toEqual({ ok: false, error: "truncated" });
    expect(parseIpPacket(good.subarray(0, 19))).toEqual({ ok: false, error: "truncated" });
    expect(parseIpPacket(good.subarray(0, good.length - 1))).toEqual({ ok: false, error: "truncated" });
    const v5 = good.slice();
    v5[0] = 0x55;
    expect(parseIpPacket(v5)).toEqual({ ok: false, error: "bad_version" });
    const ihl = good.slice();
    ihl[0] = 0x44;
    expect(parseIpPacket(ihl)).toEqual({ ok: false, error: "bad_header_length" });
    const short = good.slice();
    short[2] = 0;
    short[3] = 10;
    fillIpv4HeaderChecksum(short, 20);
    expect(parseIpPacket(short)).toEqual({ ok: false, error: "bad_length" });
    const corrupt = good.slice();
    corrupt[8] = corrupt[8]! ^ 1;
    expect(parseIpPacket(corrupt)).toEqual({ ok: false, error: "bad_header_checksum" });
    const udpLength = good.slice();
    udpLength[25] = 200;
    expect(parseIpPacket(udpLength)).toEqual({ ok: false, error: "bad_length" });
    const v6 = buildPacket({ src: "fd00::1", dst: "fd00::2", protocol: PROTOCOL_TCP, srcPort: 1, dstPort: 2 });
    expect(parseIpPacket(v6.subarray(0, v6.length - 1))).toEqual({ ok: false, error: "truncated" });
    const v6Short = v6.slice();
    v6Short[5] = 10;
    expect(parseIpPacket(v6Short.subarray(0, 50))).toEqual({ ok: false, error: "truncated" });
  });

  it("reads no transport header in a fragment past the first", () => {
    const bytes = buildPacket({ src: "10.0.0.1", dst: "10.0.0.2", protocol: PROTOCOL_UDP, srcPort: 1, dstPort: 2 });
    bytes[6] = 0x00;
    bytes[7] = 0x10;
    fillIpv4HeaderChecksum(bytes, 20);
    const parsed = parseIpPacket(bytes);
    expect(parsed).toMatchObject({ ok: true, packet: { fragmentOffset: 128 } });
    expect(parsed.ok && parsed.packet.srcPort).toBe(undefined);
  });

  it("never throws on random bytes or mutated packets, and what it accepts is consistent (fuzz)", () => {
    const r = rng("parser fuzz");
    let accepted = 0;
    for (let n = 0; n < 20000; n++) {
      let bytes: Uint8Array;
      if (r.bool(0.3)) {
        bytes = r.bytes(r.int(0, 80));
        if (bytes.length > 0) bytes[0] = (r.pick([4, 6, r.int(0, 15)]) << 4) | (bytes[0]! & 0x0f);
      } else {
        const v4 = r.bool();
        const address = (): string => formatIp(r.bytes(v4 ? 4 : 16));
        bytes = buildPacket({ src: address(), dst: address(), protocol: r.pick([PROTOCOL_TCP, PROTOCOL_UDP, v4 ? PROTOCOL_ICMP : PROTOCOL_ICMPV6, 0, 47]), srcPort: 1, dstPort: 2, icmpType: r.bool() ? 8 : undefined, payload: r.bytes(r.int(0, 40)) });
        for (let flips = r.int(0, 3); flips > 0; flips--) bytes[r.int(0, bytes.length - 1)] = r.u32() & 0xff;
        if (r.bool(0.3)) bytes = bytes.subarray(0, r.int(0, bytes.length));
        if (r.bool(0.5) && bytes.length >= 20 && bytes[0]! >> 4 === 4) fillIpv4HeaderChecksum(bytes, Math.min(bytes.length, (bytes[0]! & 15) * 4));
      }
      const parsed = parseIpPacket(bytes);
      if (!parsed.ok) continue;
      accepted++;
      const p = parsed.packet;
      const where = r.where(`#${n}`);
      expect(p.payloadOffset, where).toBeGreaterThanOrEqual(p.headerLength);
      expect(p.length, where).toBeLessThanOrEqual(bytes.length);
      expect(p.payloadOffset, where).toBeLessThanOrEqual(p.length);
      expect(p.src.length, where).toBe(p.version === 4 ? 4 : 16);
      expect(parseIp(p.srcText), where).toEqual(p.src);
      const hasPorts = p.srcPort !== undefined;
      expect(hasPorts, where).toBe(p.fragmentOffset === 0 && (p.protocol === PROTOCOL_TCP || p.protocol === PROTOCOL_UDP));
    }
    expect(accepted).toBeGreaterThan(1000);
  });
});

describe("addresses", () => {
  it("parses and formats canonically (RFC 5952)", () => {
    expect(formatIp(parseIp("2001:0db8:0:0:1:0:0:1")!)).toBe("2001:db8::1:0:0:1");
    expect(formatIp(parseIp("::ffff:192.0.2.1")!)).toBe("::ffff:c000:201");
    expect(formatIp(parseIp("::")!)).toBe("::");
    expect(formatIp(parseIp("1:0:2:3:4:5:6:7")!)).toBe("1:0:2:3:4:5:6:7");
    expect(formatIp(parseIp("100.64.0.1")!)).toBe("100.64.0.1");
    expect(parseIp("1.2.3")).toBe(undefined);
  });

  it("round-trips random addresses", () => {
    const r = rng("address round trip");
    for (let n = 0; n < 2000; n++) {
      const bytes = r.bytes(r.bool() ? 4 : 16);
      if (bytes.length === 16 && r.bool()) bytes.fill(0, r.int(0, 8), r.int(8, 16));
      expect(parseIp(formatIp(bytes)), r.where(formatIp(bytes))).toEqual(bytes);
    }
  });

  it("tests prefixes at their edges", () => {
    const p = parsePrefix("10.2.0.0/15")!;
    expect(prefixContains(p, parseIp("10.1.255.255")!)).toBe(false);
    expect(prefixContains(p, parseIp("10.3.255.255")!)).toBe(true);
    expect(prefixContains(p, parseIp("10.2.0.0")!)).toBe(true);
    expect(prefixContains(p, parseIp("10.4.0.0")!)).toBe(false);
    expect(prefixContains(parsePrefix("0.0.0.0/0")!, parseIp("1.2.3.4")!)).toBe(true);
    expect(prefixContains(parsePrefix("fd00::/8")!, parseIp("1.2.3.4")!)).toBe(false);
    expect(parsePrefix("10.0.0.0/33")).toBe(undefined);
  });
});
