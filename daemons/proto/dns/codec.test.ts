// The DNS codec: known-answer bytes written out by hand from RFC 1035 §4.1 (a query, a response,
// the §4.1.4 compression example), each decode error on a crafted message, round trips over seeded
// random messages, and a fuzz run over random and mutated datagrams that must never throw.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import { decodeDnsHeader, decodeDnsMessage, encodeDnsMessage, queryMessage, responseMessage, type DnsMessage, type DnsRecord } from "./codec.js";
import { formatIp } from "./address-plan.js";
import {
  CLASS_IN, RCODE_FORMERR, RCODE_NOERROR, RCODE_NXDOMAIN, RCODE_REFUSED, RCODE_SERVFAIL, TYPE_A, TYPE_AAAA, TYPE_MX, TYPE_PTR, TYPE_TXT,
} from "./constants.js";
import { formatName } from "./name.js";

beforeEach(reportSeedOnFailure);

const ascii = (text: string): number[] => Array.from(text, (c) => c.charCodeAt(0));
/** A wire name from its labels, uncompressed. */
const wire = (...labels: string[]): number[] => [...labels.flatMap((l) => [l.length, ...ascii(l)]), 0];

function decodeOk(bytes: Uint8Array | number[]): DnsMessage {
  const result = decodeDnsMessage(Uint8Array.from(bytes));
  if (!result.ok) throw new Error(`decode failed: ${result.error}`);
  return result.message;
}

describe("known answers (RFC 1035 §4.1)", () => {
  // ID 0x1234; flags 0x0100: a standard query (QR 0, OPCODE 0) with RD; QDCOUNT 1.
  const QUERY = [
    0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ...wire("www", "example", "com"), 0x00, 0x01, 0x00, 0x01, // QTYPE A, QCLASS IN
  ];
  // The §6.2.1 example: SRI-NIC.ARPA. A 26.0.0.73, TTL 86400 (0x00015180). Flags 0x8580: QR, AA, RD, RA.
  // The answer's owner is a pointer (§4.1.4) to the question's name at offset 12: 0xC00C.
  const RESPONSE = [
    0xbe, 0xef, 0x85, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    ...wire("SRI-NIC", "ARPA"), 0x00, 0x01, 0x00, 0x01,
    0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x51, 0x80, 0x00, 0x04, 26, 0, 0, 73,
  ];

  it("encodes a query to the bytes of §4.1.1 and §4.1.2, and decodes them back", () => {
    const message = queryMessage(0x1234, { name: "www.example.com", type: TYPE_A, class: CLASS_IN });
    expect(Array.from(encodeDnsMessage(message))).toEqual(QUERY);
    expect(decodeOk(QUERY)).toEqual(message);
  });

  it("encodes a response with its owner compressed to a pointer at the question, and decodes it", () => {
    const query = queryMessage(0xbeef, { name: "SRI-NIC.ARPA", type: TYPE_A, class: CLASS_IN });
    const answer: DnsRecord = { name: "SRI-NIC.ARPA", type: TYPE_A, class: CLASS_IN, ttl: 86400, data: { kind: "a", address: "26.0.0.73" } };
    const response = responseMessage(query, { rcode: RCODE_NOERROR, answers: [answer], aa: true });
    expect(Array.from(encodeDnsMessage(response))).toEqual(RESPONSE);
    const decoded = decodeOk(RESPONSE);
    expect(decoded).toEqual(response);
    expect(decoded).toMatchObject({ id: 0xbeef, qr: true, aa: true, rd: true, ra: true, rcode: 0 });
  });

  it("reads the §4.1.4 example: F.ISI.ARPA, FOO.F.ISI.ARPA by a pointer, ARPA by a pointer into it", () => {
    const bytes = [
      0x00, 0x07, 0x80, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
      // offset 12: F.ISI.ARPA (ISI at 14, ARPA at 18)
      ...wire("F", "ISI", "ARPA"), 0x00, TYPE_PTR, 0x00, 0x01,
      // FOO.F.ISI.ARPA: the label FOO, then a pointer to 12; PTR data: a pointer to ARPA at 18
      3, ...ascii("FOO"), 0xc0, 12, 0x00, TYPE_PTR, 0x00, 0x01, 0, 0, 0, 60, 0x00, 0x02, 0xc0, 18,
      // the root as owner (one zero octet), an MX kept opaque
      0x00, 0x00, TYPE_MX, 0x00, 0x01, 0, 0, 0, 60, 0x00, 0x03, 0x00, 0x0a, 0x00,
    ];
    const m = decodeOk(bytes);
    expect(m.questions).toEqual([{ name: "F.ISI.ARPA", type: TYPE_PTR, class: CLASS_IN }]);
    expect(m.answers[0]).toEqual({ name: "FOO.F.ISI.ARPA", type: TYPE_PTR, class: CLASS_IN, ttl: 60, data: { kind: "ptr", name: "ARPA" } });
    expect(m.answers[1]).toEqual({ name: ".", type: TYPE_MX, class: CLASS_IN, ttl: 60, data: { kind: "opaque", bytes: Uint8Array.of(0, 10, 0) } });
  });

  it("encodes AAAA and PTR data and the negative responses, echoing ID, question and RD", () => {
    const query = { ...queryMessage(7, { name: "Host.Example", type: TYPE_AAAA, class: CLASS_IN }), rd: false };
    const aaaa: DnsRecord = { name: "host.example", type: TYPE_AAAA, class: CLASS_IN, ttl: 1, data: { kind: "aaaa", address: "fd00:2021:1111:8000::1" } };
    const ptr: DnsRecord = { name: "1.0.96.100.in-addr.arpa", type: TYPE_PTR, class: CLASS_IN, ttl: 1, data: { kind: "ptr", name: "host.example" } };
    const m = responseMessage(query, { rcode: RCODE_NOERROR, answers: [aaaa, ptr] });
    expect(decodeOk(encodeDnsMessage(m))).toEqual(m);
    for (const rcode of [RCODE_NXDOMAIN, RCODE_NOERROR, RCODE_SERVFAIL, RCODE_REFUSED, RCODE_FORMERR]) {
      const negative = decodeOk(encodeDnsMessage(responseMessage(query, { rcode })));
      expect(negative).toMatchObject({ id: 7, qr: true, rd: false, ra: true, rcode, questions: query.questions, answers: [] });
    }
    const withRd = decodeOk(encodeDnsMessage(responseMessage(queryMessage(8, query.questions[0]!), { rcode: RCODE_NXDOMAIN })));
    expect(withRd.rd).toBe(true);
  });
});

describe("decode errors", () => {
  const header = (qd: number, an = 0) => [0, 1, 0, 0, 0, qd, 0, an, 0, 0, 0, 0];
  const cases: [string, number[], string][] = [
    ["empty", [], "short_header"],
    ["eleven octets", header(0).slice(0, 11), "short_header"],
    ["a question cut in its name", [...header(1), 3, 0x61, 0x62], "truncated"],
    ["a question cut before QCLASS", [...header(1), ...wire("a"), 0, 1], "truncated"],
    ["QDCOUNT beyond the data", [...header(2), ...wire("a"), 0, 1, 0, 1], "truncated"],
    ["label type 01 (a length of 64)", [...header(1), 0x40, ...new Array<number>(64).fill(0x61), 0, 0, 1, 0, 1], "bad_label_type"],
    ["label type 10", [...header(1), 0x80, 0, 0, 1, 0, 1], "bad_label_type"],
    ["a pointer to itself", [...header(1), 0xc0, 12, 0, 1, 0, 1], "bad_pointer"],
    ["a pointer forward", [...header(1), 0xc0, 14, ...wire("a"), 0, 1, 0, 1], "bad_pointer"],
    ["a pointer cut in half", [...header(1), 0xc0], "truncated"],
    ["a name of 256 octets", [...header(1), ...wire(..."abcd".split("").map((c) => c.repeat(63))), 0, 1, 0, 1], "name_too_long"],
    ["an A record of 3 octets", [...header(0, 1), 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 3, 1, 2, 3], "bad_rdata"],
    ["an AAAA record of 4 octets", [...header(0, 1), 0, 0, 28, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4], "bad_rdata"],
    ["a PTR name short of RDLENGTH", [...header(0, 1), 0, 0, 12, 0, 1, 0, 0, 0, 1, 0, 4, ...wire("a"), 9], "bad_rdata"],
    ["RDATA beyond the data", [...header(0, 1), 0, 0, 16, 0, 1, 0, 0, 0, 1, 0, 9, 1], "truncated"],
  ];
  it.each(cases)("%s", (_, bytes, error) => {
    const result = decodeDnsMessage(Uint8Array.from(bytes));
    expect(result).toMatchObject({ ok: false, error });
    if (bytes.length >= 12) expect(!result.ok && result.header).toEqual(decodeDnsHeader(Uint8Array.from(bytes)));
  });

  it("a pointer loop (a name ending in a pointer back to its own start) ends with an error", () => {
    // Name at 12: label "a", then a pointer back to 12: legal direction, but every pass adds a label.
    const bytes = [...header(1), 1, 0x61, 0xc0, 12, 0, 1, 0, 1];
    expect(decodeDnsMessage(Uint8Array.from(bytes))).toMatchObject({ ok: false, error: "name_too_long" });
  });

  it("a name of 255 octets is the most there is", () => {
    const longest = wire("a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61));
    expect(longest.length).toBe(255);
    expect(decodeOk([...header(1), ...longest, 0, 1, 0, 1]).questions[0]!.name.length).toBe(253);
  });
});

// --- Random messages ---

function randomLabel(r: Rng): string {
  const length = r.int(1, r.bool(0.1) ? 63 : 8);
  let out = "";
  for (let i = 0; i < length; i++) {
    out += r.bool(0.85) ? r.pick([..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*"]) : String.fromCharCode(r.int(0, 255));
  }
  return out;
}

/** A random name in text form, within the 255-octet limit, sharing suffixes often so compression kicks in. */
function randomName(r: Rng, pool: string[][]): string {
  if (r.bool(0.05)) return ".";
  let labels: string[] = [];
  if (pool.length > 0 && r.bool(0.5)) labels = pool[r.int(0, pool.length - 1)]!.slice(r.int(0, 2));
  for (let n = r.int(labels.length === 0 ? 1 : 0, 3); n > 0; n--) labels.unshift(randomLabel(r));
  while (labels.reduce((s, l) => s + l.length + 1, 1) > 255) labels.shift();
  if (labels.length === 0) return ".";
  pool.push(labels);
  return formatName(labels);
}

function randomRecord(r: Rng, pool: string[][]): DnsRecord {
  const base = { name: randomName(r, pool), class: r.bool(0.8) ? CLASS_IN : r.int(0, 0xffff), ttl: r.u32() };
  switch (r.int(0, 3)) {
    case 0:
      return { ...base, type: TYPE_A, data: { kind: "a", address: formatIp(r.bytes(4)) } };
    case 1:
      return { ...base, type: TYPE_AAAA, data: { kind: "aaaa", address: formatIp(r.bytes(16)) } };
    case 2:
      return { ...base, type: TYPE_PTR, data: { kind: "ptr", name: randomName(r, pool) } };
    default: {
      let type = r.int(0, 0xffff);
      if (type === TYPE_A || type === TYPE_AAAA || type === TYPE_PTR) type = TYPE_TXT;
      return { ...base, type, data: { kind: "opaque", bytes: r.bytes(r.int(0, 40)) } };
    }
  }
}

function randomMessage(r: Rng): DnsMessage {
  const pool: string[][] = [];
  const records = (max: number) => Array.from({ length: r.int(0, max) }, () => randomRecord(r, pool));
  return {
    id: r.int(0, 0xffff), qr: r.bool(), opcode: r.int(0, 15), aa: r.bool(), tc: r.bool(), rd: r.bool(), ra: r.bool(), z: r.int(0, 7), rcode: r.int(0, 15),
    questions: Array.from({ length: r.int(0, 2) }, () => ({ name: randomName(r, pool), type: r.int(0, 0xffff), class: r.int(0, 0xffff) })),
    answers: records(5), authorities: records(2), additionals: records(2),
  };
}

describe("round trips over random messages", () => {
  it("decode(encode(m)) is m, and encoding again gives the same octets", () => {
    const r = rng("dns codec round trip");
    for (let i = 0; i < 2000; i++) {
      const m = randomMessage(r);
      const bytes = encodeDnsMessage(m);
      const back = decodeDnsMessage(bytes);
      expect(back, r.where(`message ${i}`)).toEqual({ ok: true, message: m });
      expect(encodeDnsMessage(m), r.where(`message ${i}`)).toEqual(bytes);
    }
  });

  it("compression: a name written again costs a two-octet pointer", () => {
    const r = rng("dns codec compression");
    for (let i = 0; i < 300; i++) {
      const labels = Array.from({ length: r.int(1, 4) }, () => randomLabel(r));
      while (labels.reduce((s, l) => s + l.length + 1, 1) > 255) labels.shift();
      const name = formatName(labels);
      const count = r.int(1, 8);
      const answers: DnsRecord[] = Array.from({ length: count }, () => ({ name, type: TYPE_A, class: CLASS_IN, ttl: 1, data: { kind: "a", address: "192.0.2.1" } }));
      const m = responseMessage(queryMessage(1, { name, type: TYPE_A, class: CLASS_IN }), { rcode: RCODE_NOERROR, answers });
      const wireLength = labels.reduce((s, l) => s + l.length + 1, 1);
      expect(encodeDnsMessage(m).length, r.where(name)).toBe(12 + wireLength + 4 + count * (2 + 10 + 4));
    }
  });
});

describe("fuzz: never throws", () => {
  function check(r: Rng, bytes: Uint8Array, detail: string): void {
    let result: ReturnType<typeof decodeDnsMessage> | undefined;
    expect(() => (result = decodeDnsMessage(bytes)), r.where(detail)).not.toThrow();
    if (result!.ok) {
      // Whatever decodes can be written again and reads back the same.
      const again = decodeDnsMessage(encodeDnsMessage(result!.message));
      expect(again, r.where(detail)).toEqual(result);
    } else {
      expect(typeof result!.error, r.where(detail)).toBe("string");
      // From 12 octets on, a server can still answer FORMERR to the right ID.
      expect(result!.header !== undefined, r.where(detail)).toBe(bytes.length >= 12);
    }
  }

  it("random octets", () => {
    const r = rng("dns codec fuzz random");
    for (let i = 0; i < 5000; i++) {
      const bytes = r.bytes(r.int(0, 80));
      // Small counts, so the sections are actually walked rather than cut at once.
      if (bytes.length >= 12 && r.bool(0.7)) for (const at of [4, 6, 8, 10]) [bytes[at], bytes[at + 1]] = [0, r.int(0, 3)];
      check(r, bytes, `random ${i}`);
    }
  });

  it("mutated valid messages: flipped, truncated, spliced", () => {
    const r = rng("dns codec fuzz mutated");
    let ok = 0;
    for (let i = 0; i < 3000; i++) {
      let bytes = encodeDnsMessage(randomMessage(r));
      const mutation = r.int(0, 3);
      if (mutation === 0) for (let k = r.int(1, 4); k > 0; k--) bytes[r.int(0, bytes.length - 1)] = r.int(0, 255);
      else if (mutation === 1) bytes = bytes.slice(0, r.int(0, bytes.length));
      else if (mutation === 2) {
        const at = r.int(12, Math.max(12, bytes.length - 1));
        bytes[at] = 0xc0 | r.int(0, 0x3f);
        if (at + 1 < bytes.length) bytes[at + 1] = r.int(0, 255);
      } else {
        const at = r.int(0, bytes.length);
        bytes = Uint8Array.from([...bytes.subarray(0, at), ...r.bytes(r.int(1, 8)), ...bytes.subarray(at)]);
      }
      check(r, bytes, `mutation ${mutation} of message ${i}`);
      if (decodeDnsMessage(bytes).ok) ok++;
    }
    // Both outcomes are exercised.
    expect(ok).toBeGreaterThan(100);
    expect(ok).toBeLessThan(2900);
  });
});
