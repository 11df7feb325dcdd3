// Candidate priorities (RFC 8445 §5.1.2.1) and pair priorities (§6.1.2.3) on known values, the SDP
// candidate attribute (RFC 8839 §5.1) on examples, a round-trip property over random candidates and
// a fuzz pass over random and mutated lines (never throws; what parses re-encodes to itself).

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import { CANDIDATE_MAX_CHARS } from "../portal/constants.js";
import {
  CANDIDATE_TYPES, candidatePriority, formatCandidate, pairPriority, parseCandidate, typePreference, type Candidate,
} from "./candidate.js";

beforeEach(reportSeedOnFailure);

describe("priorities", () => {
  it("computes candidate priorities by the RFC 8445 §5.1.2.1 formula", () => {
    // 2^24 × 126 + 2^8 × 65535 + 255: the host priority in the portal's own examples.
    expect(candidatePriority("host")).toBe(2130706431);
    expect(candidatePriority("srflx")).toBe(1694498815);
    expect(candidatePriority("prflx")).toBe(1862270975);
    expect(candidatePriority("relay")).toBe(16777215);
    expect(candidatePriority("host", 0)).toBe(126 * 2 ** 24 + 255);
    expect(candidatePriority("host", 65535, 2)).toBe(2130706430);
    expect(candidatePriority("relay", 0, 256)).toBe(0);
    expect([typePreference("host"), typePreference("prflx"), typePreference("srflx"), typePreference("relay")]).toEqual([126, 110, 100, 0]);
    expect(() => candidatePriority("host", 65536)).toThrow(RangeError);
    expect(() => candidatePriority("host", 1, 0)).toThrow(RangeError);
  });

  it("computes pair priorities by the RFC 8445 §6.1.2.3 formula", () => {
    const host = 2130706431;
    const relay = 16777215;
    expect(pairPriority(host, host)).toBe((BigInt(host) << 32n) + 2n * BigInt(host));
    // G > D adds one, so the two agents order pairs the same way yet never tie on swapped ones.
    expect(pairPriority(host, relay)).toBe((BigInt(relay) << 32n) + 2n * BigInt(host) + 1n);
    expect(pairPriority(relay, host)).toBe((BigInt(relay) << 32n) + 2n * BigInt(host));
    expect(pairPriority(2 ** 31 - 1, 2 ** 31 - 1)).toBe(2n ** 63n - 2n ** 32n + 2n ** 32n - 2n);
    // Direct beats anything relayed.
    expect(pairPriority(host, host) > pairPriority(host, relay)).toBe(true);
    expect(pairPriority(candidatePriority("srflx"), candidatePriority("host")) > pairPriority(relay, relay)).toBe(true);
  });

  it("agrees with the formula on random values", () => {
    const r = rng("ice/pair-priority");
    for (let i = 0; i < 2000; i++) {
      const g = r.int(1, 2 ** 31 - 1);
      const d = r.int(1, 2 ** 31 - 1);
      const expected = 2n ** 32n * BigInt(Math.min(g, d)) + 2n * BigInt(Math.max(g, d)) + (g > d ? 1n : 0n);
      expect(pairPriority(g, d), r.where(`${g} ${d}`)).toBe(expected);
    }
  });
});

describe("parseCandidate", () => {
  it("parses the portal's example lines and re-encodes them", () => {
    for (const line of ["candidate:1 1 udp 2130706431 192.0.2.10 51820 typ host", "candidate:2 1 udp 1694498815 198.51.100.7 40000 typ srflx raddr 0.0.0.0 rport 0"]) {
      const parsed = parseCandidate(line);
      expect(parsed.ok).toBe(true);
      if (parsed.ok) expect(formatCandidate(parsed.candidate)).toBe(line);
    }
    expect(parseCandidate("candidate:2 1 udp 1694498815 198.51.100.7 40000 typ srflx raddr 0.0.0.0 rport 0")).toEqual({
      ok: true,
      candidate: {
        foundation: "2", component: 1, transport: "udp", priority: 1694498815, address: "198.51.100.7", port: 40000, type: "srflx",
        relatedAddress: "0.0.0.0", relatedPort: 0,
      },
    });
  });

  it("accepts what RFC 8839 allows and Wardline can use", () => {
    const browser = parseCandidate("a=candidate:842163049 1 UDP 1677729535 2001:DB8:0:0::1 3478 typ relay raddr 2001:db8::2 rport 9 generation 0 network-cost 999");
    expect(browser).toMatchObject({ ok: true, candidate: { foundation: "842163049", address: "2001:db8::1", type: "relay", relatedAddress: "2001:db8::2", relatedPort: 9 } });
    expect(parseCandidate("candidate:a+/Z 1 udp 1 10.0.0.1 0 typ prflx")).toMatchObject({ ok: true, candidate: { foundation: "a+/Z", port: 0, type: "prflx" } });
    // raddr on a host candidate means nothing; a related address without its port neither.
    for (const line of ["candidate:1 1 udp 5 10.0.0.1 9 typ host raddr 10.0.0.2 rport 7", "candidate:1 1 udp 5 10.0.0.1 9 typ srflx raddr 10.0.0.2"]) {
      const parsed = parseCandidate(line);
      expect(parsed.ok && parsed.candidate).not.toHaveProperty("relatedAddress");
      expect(parsed.ok && parsed.candidate).not.toHaveProperty("relatedPort");
    }
  });

  it("refuses what it cannot use, with a reason", () => {
    const cases: [string, string][] = [
      ["candidate:1 1 tcp 2130706431 10.0.0.1 9 typ host tcptype active", "unsupported-transport"],
      ["candidate:1 1 udp 2130706431 4a3b-uuid.local 51820 typ host", "unsupported-address"],
      ["candidate:1 1 udp 2130706431 example.com 51820 typ host", "unsupported-address"],
      ["candidate:1 1 udp 2130706431 10.0.0.1 51820 typ bogus", "unknown-type"],
      ["candidate:1 1 udp 2130706431 10.0.0.1 51820 typ", "syntax"],
      ["candidate:1 1 udp 2130706431 10.0.0.1 65536 typ host", "syntax"],
      ["candidate:1 0 udp 2130706431 10.0.0.1 1 typ host", "syntax"],
      ["candidate:1 257 udp 2130706431 10.0.0.1 1 typ host", "syntax"],
      ["candidate:1 1 udp 0 10.0.0.1 1 typ host", "syntax"],
      ["candidate:1 1 udp 2147483648 10.0.0.1 1 typ host", "syntax"],
      ["candidate:1 1 udp -5 10.0.0.1 1 typ host", "syntax"],
      ["candidate:1 1 udp 1 10.0.0.1 1 type host", "syntax"],
      ["candidate: 1 udp 1 10.0.0.1 1 typ host", "syntax"],
      ["candidate:a_b 1 udp 1 10.0.0.1 1 typ host", "syntax"],
      [`candidate:${"a".repeat(33)} 1 udp 1 10.0.0.1 1 typ host`, "syntax"],
      ["candidate:1  1 udp 1 10.0.0.1 1 typ host", "syntax"],
      ["candidate:1 1 udp 1 10.0.0.1 1 typ host generation", "syntax"],
      ["candidate:1 1 udp 1 10.0.0.1 1 typ srflx raddr", "syntax"],
      ["candidate:1 1 udp 1 10.0.0.1 1 typ srflx raddr 10.0.0.1 rport x", "syntax"],
      ["candidate:1 1 udp 1 10.0.0.1 1 typ srflx raddr host.example rport 1", "unsupported-address"],
      ["candidate:1 1 udp 1 256.0.0.1 1 typ host", "unsupported-address"],
      ["candidate:1 1 udp 1 fe80::1%eth0 1 typ host", "unsupported-address"],
      ["1 1 udp 1 10.0.0.1 1 typ host", "syntax"],
      ["", "syntax"],
      [`candidate:1 1 udp 1 10.0.0.1 1 typ host ${"x ".repeat(300)}`, "too-long"],
    ];
    for (const [line, reason] of cases) expect(parseCandidate(line), line).toMatchObject({ ok: false, reason });
  });
});

function randomIpv6(r: Rng): string {
  const words = Array.from({ length: 8 }, () => (r.bool(0.4) ? 0 : r.int(0, 0xffff)));
  return words.map((w) => w.toString(16)).join(":");
}

function randomCandidate(r: Rng): Candidate {
  const v6 = r.bool(0.3);
  const address = (): string => (v6 ? randomIpv6(r) : Array.from({ length: 4 }, () => r.int(0, 255)).join("."));
  const type = r.pick(CANDIDATE_TYPES);
  const foundationChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
  const candidate: Candidate = {
    foundation: Array.from({ length: r.int(1, 32) }, () => r.pick([...foundationChars])).join(""),
    component: r.int(1, 256),
    transport: "udp",
    priority: r.int(1, 2 ** 31 - 1),
    address: address(),
    port: r.int(0, 65535),
    type,
  };
  if (type !== "host" && r.bool(0.7)) {
    candidate.relatedAddress = address();
    candidate.relatedPort = r.int(0, 65535);
  }
  return candidate;
}

/** What parsing makes of an address: IPv6 in RFC 5952 form. */
function normalised(candidate: Candidate): Candidate {
  const parsed = parseCandidate(formatCandidate(candidate));
  if (!parsed.ok) throw new Error(`${formatCandidate(candidate)}: ${parsed.reason}`);
  return parsed.candidate;
}

describe("round trip and fuzz", () => {
  it("parse(format(c)) is c for random candidates, and format is stable", () => {
    const r = rng("ice/candidate-round-trip");
    for (let i = 0; i < 5000; i++) {
      const candidate = randomCandidate(r);
      const text = formatCandidate(candidate);
      const parsed = parseCandidate(text);
      expect(parsed.ok, r.where(text)).toBe(true);
      if (!parsed.ok) continue;
      const { address, relatedAddress, ...rest } = parsed.candidate;
      const { address: a0, relatedAddress: r0, ...rest0 } = candidate;
      expect(rest, r.where(text)).toEqual(rest0);
      // Addresses compare as bytes: the parser only rewrites IPv6 into its canonical text.
      expect(normalised({ ...candidate }).address).toBe(address);
      if (!candidate.address.includes(":")) expect(address).toBe(a0);
      if (r0 !== undefined && !r0.includes(":")) expect(relatedAddress).toBe(r0);
      expect(formatCandidate(parsed.candidate), r.where(text)).toBe(formatCandidate(normalised(parsed.candidate)));
      expect(parseCandidate(`a=${text}`)).toEqual(parsed);
    }
  });

  it("never throws on random or mutated lines, and whatever parses re-encodes to itself", () => {
    const r = rng("ice/candidate-fuzz");
    const alphabet = [..."candidte:0123456789 .:abcdefxyzUDPtyphostsrflxprflxrelayraddrrport+/-%\t"];
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      let line: string;
      const mode = r.int(0, 2);
      if (mode === 0) {
        line = Array.from({ length: r.int(0, 80) }, () => r.pick(alphabet)).join("");
      } else {
        const chars = [...formatCandidate(randomCandidate(r))];
        const edits = r.int(1, 4);
        for (let e = 0; e < edits; e++) {
          const at = r.int(0, chars.length);
          const op = r.int(0, 2);
          if (op === 0) chars.splice(at, 1);
          else if (op === 1) chars.splice(at, 0, r.pick(alphabet));
          else chars[Math.min(at, chars.length - 1)] = r.pick(alphabet);
        }
        line = (mode === 2 ? "candidate:" : "") + chars.join("");
      }
      let parsed: ReturnType<typeof parseCandidate>;
      expect(() => (parsed = parseCandidate(line)), r.where(JSON.stringify(line))).not.toThrow();
      parsed = parseCandidate(line);
      if (parsed.ok) {
        accepted++;
        const again = parseCandidate(formatCandidate(parsed.candidate));
        expect(again, r.where(JSON.stringify(line))).toEqual(parsed);
        expect(formatCandidate(parsed.candidate).length).toBeLessThanOrEqual(CANDIDATE_MAX_CHARS);
      } else {
        expect(typeof parsed.detail).toBe("string");
      }
    }
    // The mutations keep enough lines valid that the re-encoding property is exercised.
    expect(accepted).toBeGreaterThan(500);
    // Non-string input from a JSON frame is refused, not thrown on.
    expect(parseCandidate(42 as unknown as string)).toMatchObject({ ok: false, reason: "syntax" });
  });
});
