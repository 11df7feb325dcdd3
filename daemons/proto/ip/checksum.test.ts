import { beforeEach, describe, expect, it } from "vitest";
import { rng, reportSeedOnFailure, type Rng } from "../../../test/support/prng.js";
import { formatIp } from "./address.js";
import { checksumUpdateWord, internetChecksum, onesComplementSum, pseudoHeaderSum } from "./checksum.js";
import { PROTOCOL_ICMP, PROTOCOL_ICMPV6, PROTOCOL_TCP, PROTOCOL_UDP } from "./constants.js";
import { parseIpPacket, type IpPacket } from "./packet.js";
import { addressOffset, fillIpv4HeaderChecksum, fillTransportChecksum, rewriteAddress, rewriteIcmpIdentifier, rewritePort, transportChecksumValid } from "./rewrite.js";
import { buildPacket } from "./testing.js";

beforeEach(reportSeedOnFailure);

const hex = (text: string): Uint8Array => Uint8Array.from(text.match(/../g)!.map((h) => parseInt(h, 16)));

describe("Internet checksum (RFC 1071)", () => {
  it("sums the RFC 1071 §3 example to ddf2, checksum 220d", () => {
    const data = hex("0001f203f4f5f6f7");
    expect(onesComplementSum(data)).toBe(0xddf2);
    expect(internetChecksum(data)).toBe(0x220d);
  });

  it("pads an odd trailing byte with zero", () => {
    expect(onesComplementSum(hex("0001f203f4f5f6"))).toBe(onesComplementSum(hex("0001f203f4f5f600")));
  });

  it("gives the known checksum b861 of a real IPv4 header, and the header then verifies", () => {
    const header = hex("450000730000400040110000c0a80001c0a800c7");
    expect(internetChecksum(header)).toBe(0xb861);
    header[10] = 0xb8;
    header[11] = 0x61;
    expect(onesComplementSum(header)).toBe(0xffff);
  });

  it("adds the IPv4 pseudo-header as RFC 768 lays it out", () => {
    const src = hex("c0a80001");
    const dst = hex("c0a800c7");
    const laidOut = hex(`c0a80001c0a800c70011${(8).toString(16).padStart(4, "0")}`);
    expect(pseudoHeaderSum(src, dst, PROTOCOL_UDP, 8)).toBe(onesComplementSum(laidOut));
  });

  it("updates as RFC 1624 eqn. 3 says: equal to recomputation for random data", () => {
    const r = rng("rfc1624 words");
    for (let n = 0; n < 2000; n++) {
      const data = r.bytes(2 * r.int(1, 40));
      const before = internetChecksum(data);
      const at = 2 * r.int(0, data.length / 2 - 1);
      const word = r.bool(0.1) ? r.pick([0, 0xffff]) : r.int(0, 0xffff);
      const old = (data[at]! << 8) | data[at + 1]!;
      data[at] = word >>> 8;
      data[at + 1] = word & 0xff;
      const updated = checksumUpdateWord(before, old, word);
      // In one's complement 0x0000 and 0xffff are both zero; the data must verify either way.
      // (All-zero data is the one degenerate case: its checksum is 0xffff and eqn. 3 may give 0x0000.)
      const degenerate = data.every((b) => b === 0) && updated === 0;
      if (!degenerate) expect(onesComplementSum(data, 0, data.length, updated), r.where(`#${n}`)).toBe(0xffff);
    }
  });
});

/** A random well-formed packet: IPv4 or IPv6, TCP, UDP (with or without checksum) or ICMP echo. */
function randomPacket(r: Rng): Uint8Array {
  const v4 = r.bool();
  const address = (): string => formatIp(r.bytes(v4 ? 4 : 16));
  const kind = r.int(0, 3);
  const payload = r.bytes(r.int(0, 300));
  const base = { src: address(), dst: address(), payload };
  if (kind === 0) return buildPacket({ ...base, protocol: PROTOCOL_TCP, srcPort: r.int(0, 65535), dstPort: r.int(0, 65535), tcpFlags: r.int(0, 255) });
  if (kind === 1) return buildPacket({ ...base, protocol: PROTOCOL_UDP, srcPort: r.int(0, 65535), dstPort: r.int(0, 65535), noUdpChecksum: v4 && r.bool(0.2) });
  if (kind === 2) return buildPacket({ ...base, icmpType: v4 ? 8 : 128, icmpIdentifier: r.int(0, 65535) });
  return buildPacket({ ...base, protocol: 47 });
}

function view(bytes: Uint8Array): IpPacket {
  const parsed = parseIpPacket(bytes);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.packet;
}

const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
const isZero = (x: number): boolean => x === 0 || x === 0xffff;

describe("incremental rewrite vs full recomputation", () => {
  it("agrees over seeded random packets and rewrites", () => {
    const r = rng("rewrite differential");
    for (let n = 0; n < 3000; n++) {
      const packet = randomPacket(r);
      const v = view(packet);
      const oracle = packet.slice();
      const incremental = packet.slice();
      const udpNone = v.version === 4 && v.protocol === PROTOCOL_UDP && u16(packet, v.payloadOffset + 6) === 0;
      for (let step = r.int(1, 4); step > 0; step--) {
        const op = r.int(0, 2);
        if (op === 0) {
          const end = r.pick(["src", "dst"] as const);
          const address = r.bytes(v.version === 4 ? 4 : 16);
          rewriteAddress(incremental, v, end, address);
          oracle.set(address, addressOffset(v.version, end));
        } else if (op === 1 && v.srcPort !== undefined) {
          const end = r.pick(["src", "dst"] as const);
          const port = r.int(0, 65535);
          rewritePort(incremental, v, end, port);
          oracle[v.payloadOffset + (end === "src" ? 0 : 2)] = port >>> 8;
          oracle[v.payloadOffset + (end === "src" ? 1 : 3)] = port & 0xff;
        } else if (op === 2 && v.icmpIdentifier !== undefined) {
          const id = r.int(0, 65535);
          rewriteIcmpIdentifier(incremental, v, id);
          oracle[v.payloadOffset + 4] = id >>> 8;
          oracle[v.payloadOffset + 5] = id & 0xff;
        }
      }
      if (v.version === 4) fillIpv4HeaderChecksum(oracle, v.headerLength);
      if (!udpNone) fillTransportChecksum(oracle, v);
      const where = r.where(`#${n} v${v.version} proto ${v.protocol}`);
      // Everything but the checksums is byte-equal; the checksums are equal as one's complement numbers.
      const checksumAt = v.protocol === PROTOCOL_TCP ? v.payloadOffset + 16 : v.protocol === PROTOCOL_UDP ? v.payloadOffset + 6 : v.payloadOffset + 2;
      const hasTransportChecksum = [PROTOCOL_TCP, PROTOCOL_UDP, PROTOCOL_ICMP, PROTOCOL_ICMPV6].includes(v.protocol);
      let firstDifference = -1;
      for (let i = 0; i < packet.length && firstDifference < 0; i++) {
        const inChecksum = (v.version === 4 && (i === 10 || i === 11)) || (hasTransportChecksum && (i === checksumAt || i === checksumAt + 1));
        if (!inChecksum && incremental[i] !== oracle[i]) firstDifference = i;
      }
      expect(firstDifference, `${where} first differing byte`).toBe(-1);
      if (v.version === 4) expect(u16(incremental, 10), where).toBe(u16(oracle, 10));
      if (hasTransportChecksum) {
        const a = u16(incremental, checksumAt);
        const b = u16(oracle, checksumAt);
        if (!(isZero(a) && isZero(b) && !udpNone)) expect(a, where).toBe(b);
        if (udpNone) expect(a, where).toBe(0);
        if (v.protocol === PROTOCOL_UDP && !udpNone) expect(a, `${where} udp checksum never 0`).not.toBe(0);
      }
      const after = view(incremental);
      expect(transportChecksumValid(incremental, after), where).toBe(true);
    }
  });

  it("keeps a UDP/IPv4 checksum of 0 at 0 through address and port rewrites", () => {
    const packet = buildPacket({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 1000, dstPort: 53, noUdpChecksum: true, payload: new Uint8Array([1, 2, 3]) });
    const v = view(packet);
    rewriteAddress(packet, v, "dst", Uint8Array.of(192, 0, 2, 1));
    rewritePort(packet, v, "src", 4000);
    expect(u16(packet, v.payloadOffset + 6)).toBe(0);
    expect(parseIpPacket(packet).ok).toBe(true);
  });
});
