// The decoder against the RFC 5769 test vectors (typed in from the RFC, section cited) and the
// RFC 8489 Appendix B.1 vector, every refusal decodeStun has, the rules for attributes after an
// integrity attribute (RFC 8489 §9, §14.5-14.7), the message-type bit layout against a
// straightforward bit-by-bit oracle, and a fuzz pass: random and mutated bytes never make the
// decoder or any typed getter throw.

import { createHash } from "node:crypto";
import { beforeEach, describe, expect, it } from "vitest";
import { concat, hex, toHex, utf8 } from "../../../test/support/bytes.js";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import { decodeAddress, decodeAddressErrorCode, decodeAddressFamily, decodeChannelNumber, decodeEmpty, decodeErrorCode,
  decodeEvenPort, decodePasswordAlgorithm, decodePasswordAlgorithms, decodeRequestedTransport, decodeReservationToken,
  decodeShortText, decodeTieBreaker, decodeU32, decodeUnknownAttributes, decodeUserHash, decodeUsername, decodeXorAddress,
} from "./attributes.js";
import { StunBuilder } from "./builder.js";
import {
  ATTR_FINGERPRINT, ATTR_ICE_CONTROLLED, ATTR_MESSAGE_INTEGRITY, ATTR_MESSAGE_INTEGRITY_SHA256, ATTR_PRIORITY, ATTR_SOFTWARE,
  ATTR_USERNAME, METHOD_ALLOCATE, METHOD_BINDING, PASSWORD_ALGORITHM_MD5, PASSWORD_ALGORITHM_SHA256,
} from "./constants.js";
import { longTermKey, shortTermKey, userHash, verifyIntegrity, verifyIntegritySha256 } from "./integrity.js";
import { decodeMessageType, decodeStun, encodeMessageType, KNOWN_ATTRIBUTES, StunMessage, type StunClass, type StunDecoded } from "./message.js";

beforeEach(reportSeedOnFailure);

// --- RFC 5769 ---

/** RFC 5769 §2.1, Sample Request: short-term credentials, SOFTWARE, ICE attributes, FINGERPRINT. */
const RFC5769_REQUEST = hex(`
  00 01 00 58  21 12 a4 42  b7 e7 a7 01  bc 34 d6 86  fa 87 df ae
  80 22 00 10  53 54 55 4e  20 74 65 73  74 20 63 6c  69 65 6e 74
  00 24 00 04  6e 00 01 ff
  80 29 00 08  93 2f f9 b1  51 26 3b 36
  00 06 00 09  65 76 74 6a  3a 68 36 76  59 20 20 20
  00 08 00 14  9a ea a7 0c  bf d8 cb 56  78 1e f2 b5  b2 d3 f2 49  c1 b5 71 a2
  80 28 00 04  e5 7a 3b cf`);
/** RFC 5769 §2.1-2.3: the short-term password of all three. */
const RFC5769_PASSWORD = "VOkJxbRl1RmTxUk/WvJxBt";
const RFC5769_TRANSACTION_ID = hex("b7 e7 a7 01 bc 34 d6 86 fa 87 df ae");

/** RFC 5769 §2.2, Sample IPv4 Response: XOR-MAPPED-ADDRESS 192.0.2.1 port 32853. */
const RFC5769_IPV4_RESPONSE = hex(`
  01 01 00 3c  21 12 a4 42  b7 e7 a7 01  bc 34 d6 86  fa 87 df ae
  80 22 00 0b  74 65 73 74  20 76 65 63  74 6f 72 20
  00 20 00 08  00 01 a1 47  e1 12 a6 43
  00 08 00 14  2b 91 f5 99  fd 9e 90 c3  8c 74 89 f9  2a f9 ba 53  f0 6b e7 d7
  80 28 00 04  c0 7d 4c 96`);

/** RFC 5769 §2.3, Sample IPv6 Response: XOR-MAPPED-ADDRESS 2001:db8:1234:5678:11:2233:4455:6677 port 32853. */
const RFC5769_IPV6_RESPONSE = hex(`
  01 01 00 48  21 12 a4 42  b7 e7 a7 01  bc 34 d6 86  fa 87 df ae
  80 22 00 0b  74 65 73 74  20 76 65 63  74 6f 72 20
  00 20 00 14  00 02 a1 47  01 13 a9 fa  a5 d3 f1 79  bc 25 f4 b5  be d2 b9 d9
  00 08 00 14  a3 82 95 4e  4b e6 7b f1  17 84 c9 7c  82 92 c2 75  bf e3 ed 41
  80 28 00 04  c8 fb 0b 4c`);

/** RFC 5769 §2.4, Sample Request with Long-Term Authentication (no FINGERPRINT). */
const RFC5769_LONG_TERM_REQUEST = hex(`
  00 01 00 60  21 12 a4 42  78 ad 34 33  c6 ad 72 c0  29 da 41 2e
  00 06 00 12  e3 83 9e e3  83 88 e3 83  aa e3 83 83  e3 82 af e3  82 b9 00 00
  00 15 00 1c  66 2f 2f 34  39 39 6b 39  35 34 64 36  4f 4c 33 34  6f 4c 39 46  53 54 76 79  36 34 73 41
  00 14 00 0b  65 78 61 6d  70 6c 65 2e  6f 72 67 00
  00 08 00 14  f6 70 24 65  6d d6 4a 3e  02 b8 e0 71  2e 85 c9 a2  8c a8 96 66`);
/** RFC 5769 §2.4: "<U+30DE><U+30C8><U+30EA><U+30C3><U+30AF><U+30B9>", unchanged by SASLprep. */
const RFC5769_USERNAME = "\u30de\u30c8\u30ea\u30c3\u30af\u30b9";
/** RFC 5769 §2.4: "The<U+00AD>M<U+00AA>tr<U+2168>", which SASLprep turns into "TheMatrIX". */
const RFC5769_PASSWORD_UNPREPARED = "The\u00adM\u00aatr\u2168";

/**
 * RFC 8489 Appendix B.1: the §2.4 request with USERHASH, PASSWORD-ALGORITHM SHA-256 and a 32-byte
 * MESSAGE-INTEGRITY-SHA256 (its nonce carries the "obMatJos2" cookie of §9.2).
 */
const RFC8489_B1_REQUEST = hex(`
  00 01 00 90  21 12 a4 42  78 ad 34 33  c6 ad 72 c0  29 da 41 2e
  00 1e 00 20  4a 3c f3 8f  ef 69 92 bd  a9 52 c6 78  04 17 da 0f  24 81 94 15  56 9e 60 b2  05 c4 6e 41  40 7f 17 04
  00 15 00 29  6f 62 4d 61  74 4a 6f 73  32 41 41 41  43 66 2f 2f  34 39 39 6b  39 35 34 64  36 4f 4c 33
               34 6f 4c 39  46 53 54 76  79 36 34 73  41 00 00 00
  00 14 00 0b  65 78 61 6d  70 6c 65 2e  6f 72 67 00
  00 1d 00 04  00 02 00 00
  00 1c 00 20  b5 c7 bf 00  5b 6c 52 a2  1c 51 c5 e8  92 f8 19 24  13 62 96 cb  92 7c 43 14  93 09 27 8c  c6 51 8e 65`);

function decoded(bytes: Uint8Array): StunMessage {
  const result = decodeStun(bytes);
  if (!result.ok) throw new Error(`decodeStun: ${result.reason}: ${result.detail}`);
  return result.message;
}

const refusal = (result: StunDecoded): string | undefined => (result.ok ? undefined : result.reason);

describe("STUN decoder, RFC 5769 vectors", () => {
  it("§2.1 sample request: attributes, ICE values, short-term MESSAGE-INTEGRITY, FINGERPRINT", () => {
    const m = decoded(RFC5769_REQUEST);
    expect([m.method, m.class]).toEqual([METHOD_BINDING, "request"]);
    expect(toHex(m.transactionId)).toBe(toHex(RFC5769_TRANSACTION_ID));
    expect(m.attributes.map((a) => [a.type, a.offset])).toEqual([
      [ATTR_SOFTWARE, 20], [ATTR_PRIORITY, 40], [ATTR_ICE_CONTROLLED, 48], [ATTR_USERNAME, 60],
      [ATTR_MESSAGE_INTEGRITY, 76], [ATTR_FINGERPRINT, 100],
    ]);
    expect(m.software()).toBe("STUN test client");
    expect(m.priority()).toBe(0x6e0001ff);
    expect(m.iceControlled()).toBe(0x932ff9b151263b36n);
    // The USERNAME is padded with three spaces, which a receiver must ignore (RFC 5769 §2.1).
    expect(m.username()).toBe("evtj:h6vY");
    expect(m.ignored).toBe(0);
    expect(m.unknownComprehensionRequired()).toEqual([]);
    expect(verifyIntegrity(m, RFC5769_REQUEST, shortTermKey(RFC5769_PASSWORD))).toEqual({ ok: true });
    expect(verifyIntegrity(m, RFC5769_REQUEST, shortTermKey("VOkJxbRl1RmTxUk/WvJxBu"))).toEqual({ ok: false, reason: "mismatch" });
    expect(verifyIntegritySha256(m, RFC5769_REQUEST, shortTermKey(RFC5769_PASSWORD))).toEqual({ ok: false, reason: "absent" });
  });

  it("§2.2 IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1:32853", () => {
    const m = decoded(RFC5769_IPV4_RESPONSE);
    expect([m.method, m.class]).toEqual([METHOD_BINDING, "success"]);
    expect(m.software()).toBe("test vector");
    expect(m.xorMappedAddress()).toEqual({ family: 4, address: "192.0.2.1", port: 32853 });
    expect(verifyIntegrity(m, RFC5769_IPV4_RESPONSE, shortTermKey(RFC5769_PASSWORD))).toEqual({ ok: true });
  });

  it("§2.3 IPv6 response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853", () => {
    const m = decoded(RFC5769_IPV6_RESPONSE);
    expect(m.xorMappedAddress()).toEqual({ family: 6, address: "2001:db8:1234:5678:11:2233:4455:6677", port: 32853 });
    expect(verifyIntegrity(m, RFC5769_IPV6_RESPONSE, shortTermKey(RFC5769_PASSWORD))).toEqual({ ok: true });
  });

  it("§2.4 long-term request: the key from the SASLprep'd password, given raw or prepared", () => {
    const m = decoded(RFC5769_LONG_TERM_REQUEST);
    expect(m.username()).toBe(RFC5769_USERNAME);
    expect(m.nonce()).toBe("f//499k954d6OL34oL9FSTvy64sA");
    expect(m.realm()).toBe("example.org");
    expect(m.has(ATTR_FINGERPRINT)).toBe(false);
    for (const password of [RFC5769_PASSWORD_UNPREPARED, "TheMatrIX"]) {
      const key = longTermKey(RFC5769_USERNAME, "example.org", password);
      expect(verifyIntegrity(m, RFC5769_LONG_TERM_REQUEST, key), password).toEqual({ ok: true });
    }
    // MD5 of the password as given, without SASLprep's mapping (soft hyphen dropped, then NFKC),
    // fails: the vector needs the preparation, not only ASCII passed through.
    const raw = createHash("md5").update(`${RFC5769_USERNAME}:example.org:${RFC5769_PASSWORD_UNPREPARED}`).digest();
    expect(verifyIntegrity(m, RFC5769_LONG_TERM_REQUEST, new Uint8Array(raw))).toEqual({ ok: false, reason: "mismatch" });
    const wrong = longTermKey(RFC5769_USERNAME, "example.org", "TheMatrix");
    expect(verifyIntegrity(m, RFC5769_LONG_TERM_REQUEST, wrong)).toEqual({ ok: false, reason: "mismatch" });
  });

  it("RFC 8489 B.1: USERHASH, PASSWORD-ALGORITHM SHA-256 and MESSAGE-INTEGRITY-SHA256", () => {
    const m = decoded(RFC8489_B1_REQUEST);
    expect(toHex(m.userHash()!)).toBe(toHex(userHash(RFC5769_USERNAME, "example.org")));
    expect(m.nonce()).toBe("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA");
    expect(m.passwordAlgorithm()).toEqual({ algorithm: PASSWORD_ALGORITHM_SHA256, parameters: new Uint8Array(0) });
    const key = longTermKey(RFC5769_USERNAME, "example.org", RFC5769_PASSWORD_UNPREPARED, PASSWORD_ALGORITHM_SHA256);
    expect(verifyIntegritySha256(m, RFC8489_B1_REQUEST, key)).toEqual({ ok: true });
    const md5Key = longTermKey(RFC5769_USERNAME, "example.org", RFC5769_PASSWORD_UNPREPARED, PASSWORD_ALGORITHM_MD5);
    expect(verifyIntegritySha256(m, RFC8489_B1_REQUEST, md5Key)).toEqual({ ok: false, reason: "mismatch" });
    expect(verifyIntegrity(m, RFC8489_B1_REQUEST, key)).toEqual({ ok: false, reason: "absent" });
  });
});

describe("STUN builder, RFC 5769 vectors", () => {
  /** Byte positions of attribute padding: RFC 5769 pads with spaces, RFC 8489 §14 has senders write zeros. */
  function paddingPositions(bytes: Uint8Array): Set<number> {
    const out = new Set<number>();
    for (const { value } of decoded(bytes).attributes) {
      const end = value.byteOffset - bytes.byteOffset + value.length;
      for (let i = end; i % 4 !== 0; i++) out.add(i);
    }
    return out;
  }

  it("§2.4 re-encodes byte for byte (zero padding, long-term key)", () => {
    const built = new StunBuilder(METHOD_BINDING, "request", hex("78 ad 34 33 c6 ad 72 c0 29 da 41 2e"))
      .addUsername(RFC5769_USERNAME).addNonce("f//499k954d6OL34oL9FSTvy64sA").addRealm("example.org")
      .build({ integrity: longTermKey(RFC5769_USERNAME, "example.org", RFC5769_PASSWORD_UNPREPARED) });
    expect(toHex(built)).toBe(toHex(RFC5769_LONG_TERM_REQUEST));
  });

  it("RFC 8489 B.1 re-encodes byte for byte (USERHASH, PASSWORD-ALGORITHM, MESSAGE-INTEGRITY-SHA256)", () => {
    const built = new StunBuilder(METHOD_BINDING, "request", hex("78 ad 34 33 c6 ad 72 c0 29 da 41 2e"))
      .addUserHash(userHash(RFC5769_USERNAME, "example.org")).addNonce("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA")
      .addRealm("example.org").addPasswordAlgorithm({ algorithm: PASSWORD_ALGORITHM_SHA256, parameters: new Uint8Array(0) })
      .build({ integritySha256: longTermKey(RFC5769_USERNAME, "example.org", "TheMatrIX", PASSWORD_ALGORITHM_SHA256) });
    expect(toHex(built)).toBe(toHex(RFC8489_B1_REQUEST));
  });

  it("§2.1-2.3 re-encode identically but for the padding bytes and the HMAC and CRC that cover them", () => {
    const key = shortTermKey(RFC5769_PASSWORD);
    const cases: [Uint8Array, Uint8Array][] = [
      [RFC5769_REQUEST, new StunBuilder(METHOD_BINDING, "request", RFC5769_TRANSACTION_ID).addSoftware("STUN test client")
        .addPriority(0x6e0001ff).addIceControlled(0x932ff9b151263b36n).addUsername("evtj:h6vY").build({ integrity: key, fingerprint: true })],
      [RFC5769_IPV4_RESPONSE, new StunBuilder(METHOD_BINDING, "success", RFC5769_TRANSACTION_ID).addSoftware("test vector")
        .addXorMappedAddress({ family: 4, address: "192.0.2.1", port: 32853 }).build({ integrity: key, fingerprint: true })],
      [RFC5769_IPV6_RESPONSE, new StunBuilder(METHOD_BINDING, "success", RFC5769_TRANSACTION_ID).addSoftware("test vector")
        .addXorMappedAddress({ family: 6, address: "2001:db8:1234:5678:11:2233:4455:6677", port: 32853 }).build({ integrity: key, fingerprint: true })],
    ];
    for (const [vector, built] of cases) {
      expect(built.length).toBe(vector.length);
      const padding = paddingPositions(vector);
      const macStart = vector.length - 32; // MESSAGE-INTEGRITY value (20) + FINGERPRINT (8)
      for (let i = 0; i < vector.length; i++) {
        if (padding.has(i) || i >= macStart) continue;
        expect(built[i], `byte ${i}`).toBe(vector[i]);
      }
      // What differs is only what the padding feeds: our own message verifies and fingerprints.
      const m = decoded(built);
      expect(verifyIntegrity(m, built, key)).toEqual({ ok: true });
      for (const i of padding) expect(built[i], `padding byte ${i}`).toBe(0);
    }
  });
});

describe("STUN decoder, refusals", () => {
  const valid = RFC5769_IPV4_RESPONSE;
  const edit = (f: (b: Uint8Array) => void, from = valid): Uint8Array => {
    const b = from.slice();
    f(b);
    return b;
  };

  it("refuses short input, set top bits, a wrong cookie and inconsistent lengths", () => {
    expect(refusal(decodeStun(new Uint8Array(0)))).toBe("short");
    expect(refusal(decodeStun(valid.subarray(0, 19)))).toBe("short");
    expect(refusal(decodeStun(edit((b) => (b[0]! |= 0x80))))).toBe("not-stun");
    expect(refusal(decodeStun(edit((b) => (b[0]! |= 0x40))))).toBe("not-stun");
    expect(refusal(decodeStun(edit((b) => (b[7]! ^= 1))))).toBe("bad-cookie");
    expect(refusal(decodeStun(edit((b) => (b[3] = 0x3d))))).toBe("bad-length"); // not a multiple of 4
    expect(refusal(decodeStun(edit((b) => (b[3] = 0x38))))).toBe("bad-length"); // shorter than what follows
    expect(refusal(decodeStun(valid.subarray(0, valid.length - 4)))).toBe("bad-length"); // datagram cut short
    expect(refusal(decodeStun(concat(valid, new Uint8Array(4))))).toBe("bad-length"); // bytes after the message
  });

  it("accepts a header alone (no attributes) and refuses an attribute running past the end", () => {
    const header = new StunBuilder(METHOD_BINDING, "request", RFC5769_TRANSACTION_ID).build();
    expect(header.length).toBe(20);
    expect(decoded(header).attributes).toEqual([]);
    const overrun = new StunBuilder(METHOD_BINDING, "request", RFC5769_TRANSACTION_ID).add(0x8050, new Uint8Array(8)).build();
    overrun[23] = 9; // value length 9 pads to 12, past the end
    expect(refusal(decodeStun(overrun))).toBe("truncated-attribute");
    overrun[23] = 0xff;
    expect(refusal(decodeStun(overrun))).toBe("truncated-attribute");
  });

  it("FINGERPRINT must be last, 4 bytes and correct (RFC 8489 §14.7)", () => {
    expect(refusal(decodeStun(edit((b) => (b[b.length - 1]! ^= 1))))).toBe("bad-fingerprint");
    // A FINGERPRINT followed by another attribute: moved, so its own value stays right for its offset.
    const builder = new StunBuilder(METHOD_BINDING, "request", RFC5769_TRANSACTION_ID).addSoftware("x");
    const fingerprinted = builder.build({ fingerprint: true });
    const moved = concat(fingerprinted, hex("80 22 00 00"));
    moved[3]! += 4;
    expect(refusal(decodeStun(moved))).toBe("misplaced-fingerprint");
    const long = new StunBuilder(METHOD_BINDING, "request", RFC5769_TRANSACTION_ID).add(ATTR_FINGERPRINT, new Uint8Array(8)).build();
    expect(refusal(decodeStun(long))).toBe("bad-fingerprint");
  });

  it("after MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT count; after -SHA256 only FINGERPRINT (§9, §14.5, §14.6)", () => {
    const key = shortTermKey("pass");
    const base = new StunBuilder(METHOD_BINDING, "request", RFC5769_TRANSACTION_ID).addUsername("user");
    const both = base.build({ integrity: key, integritySha256: key, fingerprint: true });
    const m = decoded(both);
    expect(m.attributes.map((a) => a.type)).toEqual([ATTR_USERNAME, ATTR_MESSAGE_INTEGRITY, ATTR_MESSAGE_INTEGRITY_SHA256, ATTR_FINGERPRINT]);
    expect(verifyIntegrity(m, both, key)).toEqual({ ok: true });
    expect(verifyIntegritySha256(m, both, key)).toEqual({ ok: true });

    // Append SOFTWARE after the integrity attributes by hand: it must be ignored, and both HMACs
    // still verify, since neither covers it.
    const integrityOnly = base.build({ integrity: key });
    const trailing = concat(integrityOnly, hex("80 22 00 03 61 62 63 00"), hex("00 06 00 01 7a 00 00 00"));
    trailing[3]! += 16;
    const t = decoded(trailing);
    expect(t.ignored).toBe(2);
    expect(t.software()).toBeUndefined();
    expect(t.username()).toBe("user");
    expect(verifyIntegrity(t, trailing, key)).toEqual({ ok: true });

    // A second MESSAGE-INTEGRITY after MESSAGE-INTEGRITY-SHA256 is ignored too.
    const sha256Only = base.build({ integritySha256: key });
    const second = concat(sha256Only, hex("00 08 00 14"), new Uint8Array(20));
    second[3]! += 24;
    const s = decoded(second);
    expect(s.ignored).toBe(1);
    expect(verifyIntegrity(s, second, key)).toEqual({ ok: false, reason: "absent" });
    expect(verifyIntegritySha256(s, second, key)).toEqual({ ok: true });
  });

  it("an integrity attribute of the wrong size is malformed, not a mismatch", () => {
    const key = shortTermKey("pass");
    const short = new StunBuilder(METHOD_BINDING, "request", RFC5769_TRANSACTION_ID).add(ATTR_MESSAGE_INTEGRITY, new Uint8Array(16)).build();
    expect(verifyIntegrity(decoded(short), short, key)).toEqual({ ok: false, reason: "malformed" });
    for (const size of [0, 12, 18, 36]) {
      const bad = new StunBuilder(METHOD_BINDING, "request", RFC5769_TRANSACTION_ID).add(ATTR_MESSAGE_INTEGRITY_SHA256, new Uint8Array(size)).build();
      expect(verifyIntegritySha256(decoded(bad), bad, key), `${size} bytes`).toEqual({ ok: false, reason: "malformed" });
    }
    // A message checked against other, shorter bytes is refused rather than read out of bounds.
    const m = decoded(RFC5769_REQUEST);
    expect(verifyIntegrity(m, RFC5769_REQUEST.subarray(0, 40), shortTermKey(RFC5769_PASSWORD))).toEqual({ ok: false, reason: "malformed" });
  });

  it("lists unknown comprehension-required attributes once each, in order, for a 420", () => {
    const bytes = new StunBuilder(METHOD_ALLOCATE, "request", RFC5769_TRANSACTION_ID)
      .add(0x7fff, new Uint8Array(1)).addSoftware("s").add(0x0003, new Uint8Array(4)) // 0x0003: CHANGE-REQUEST (RFC 5780), not ours
      .add(0x7fff, new Uint8Array(0)).add(0xc001, new Uint8Array(2)).addLifetime(600).build();
    const m = decoded(bytes);
    expect(m.unknownComprehensionRequired()).toEqual([0x7fff, 0x0003]);
    expect(m.unknownComprehensionRequired(new Set([...KNOWN_ATTRIBUTES, 0x0003]))).toEqual([0x7fff]);
  });
});

describe("message type", () => {
  /** RFC 8489 §5, Figure 3, bit by bit: M11..M7 at 13..9, C1 at 8, M6..M4 at 7..5, C0 at 4, M3..M0 at 3..0. */
  function oracle(method: number, c: number): number {
    const m = (i: number): number => (method >> i) & 1;
    const bits = [m(0), m(1), m(2), m(3), c & 1, m(4), m(5), m(6), (c >> 1) & 1, m(7), m(8), m(9), m(10), m(11)];
    return bits.reduce((t, bit, i) => t | (bit << i), 0);
  }

  it("encodes every method and class as Figure 3 lays the bits out, and decodes back", () => {
    const classes: StunClass[] = ["request", "indication", "success", "error"];
    for (let method = 0; method <= 0xfff; method++) {
      classes.forEach((messageClass, c) => {
        const type = encodeMessageType(method, messageClass);
        expect(type).toBe(oracle(method, c));
        expect(decodeMessageType(type)).toEqual({ method, messageClass });
      });
    }
    // The familiar values: Binding request 0x0001, success 0x0101, error 0x0111, Allocate error 0x0113.
    expect(encodeMessageType(METHOD_BINDING, "success")).toBe(0x0101);
    expect(encodeMessageType(METHOD_BINDING, "error")).toBe(0x0111);
    expect(encodeMessageType(METHOD_ALLOCATE, "error")).toBe(0x0113);
    expect(() => encodeMessageType(0x1000, "request")).toThrow(RangeError);
  });
});

describe("typed attribute decoders refuse malformed values", () => {
  it("addresses", () => {
    const id = RFC5769_TRANSACTION_ID;
    expect(decodeAddress(hex("00 01 00 50 c0 00 02 01"))).toEqual({ family: 4, address: "192.0.2.1", port: 80 });
    expect(decodeAddress(hex("ff 01 00 50 c0 00 02 01")), "the reserved byte is ignored").toEqual({ family: 4, address: "192.0.2.1", port: 80 });
    expect(decodeAddress(hex("00 02 00 50 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01"))).toEqual({ family: 6, address: "::1", port: 80 });
    for (const bad of ["", "00 01 00 50 c0 00 02", "00 01 00 50 c0 00 02 01 00", "00 03 00 50 c0 00 02 01", "00 02 00 50 c0 00 02 01"]) {
      expect(decodeAddress(hex(bad)), bad).toBeUndefined();
      expect(decodeXorAddress(hex(bad), id), bad).toBeUndefined();
    }
    expect(decodeXorAddress(hex("00 01 a1 47 e1 12 a6 43"), new Uint8Array(11)), "a transaction ID of 11 bytes").toBeUndefined();
  });

  it("errors, text and lists", () => {
    expect(decodeErrorCode(hex("00 00 04 01"))).toEqual({ code: 401, reason: "" });
    expect(decodeErrorCode(concat(hex("00 00 04 14"), utf8("Unknown Attribute")))).toEqual({ code: 420, reason: "Unknown Attribute" });
    expect(decodeErrorCode(hex("00 00 fc 26")), "the reserved bits above the class are ignored").toEqual({ code: 438, reason: "" });
    for (const bad of ["", "00 00 04", "00 00 02 00", "00 00 07 00", "00 00 04 64", "00 00 04 00 ff"]) {
      expect(decodeErrorCode(hex(bad)), bad).toBeUndefined();
    }
    expect(decodeAddressErrorCode(hex("02 00 04 28"))).toEqual({ family: 6, code: 440, reason: "" });
    expect(decodeAddressErrorCode(hex("03 00 04 28"))).toBeUndefined();
    expect(decodeShortText(utf8("é".repeat(127)))).toBe("é".repeat(127));
    expect(decodeShortText(utf8("é".repeat(128))), "128 characters").toBeUndefined();
    expect(decodeShortText(utf8("€".repeat(127))), "381 bytes, 127 characters").toBe("€".repeat(127));
    expect(decodeShortText(hex("c3 28")), "not UTF-8").toBeUndefined();
    expect(decodeShortText(hex("ed a0 80")), "a UTF-8 surrogate").toBeUndefined();
    expect(decodeUsername(new Uint8Array(763).fill(0x61))).toBe("a".repeat(763));
    expect(decodeUsername(new Uint8Array(764).fill(0x61))).toBeUndefined();
    expect(decodeUnknownAttributes(hex("00 01 80 22 7f ff"))).toEqual([1, 0x8022, 0x7fff]);
    expect(decodeUnknownAttributes(hex("00 01 80"))).toBeUndefined();
    expect(decodePasswordAlgorithms(hex("00 02 00 00 00 01 00 00"))).toEqual([
      { algorithm: 2, parameters: new Uint8Array(0) }, { algorithm: 1, parameters: new Uint8Array(0) },
    ]);
    expect(decodePasswordAlgorithms(hex("00 09 00 03 aa bb cc 00 00 01 00 01 dd"))).toEqual([
      { algorithm: 9, parameters: hex("aa bb cc") }, { algorithm: 1, parameters: hex("dd") },
    ]);
    for (const bad of ["", "00 02 00", "00 02 00 01", "00 02 00 00 00"]) expect(decodePasswordAlgorithms(hex(bad)), bad).toBeUndefined();
    expect(decodePasswordAlgorithm(hex("00 02 00 00 00 01 00 00")), "two entries").toBeUndefined();
  });

  it("fixed-size values", () => {
    expect(decodeU32(hex("00 00 02 58"))).toBe(600);
    expect(decodeU32(hex("00 00 02"))).toBeUndefined();
    expect(decodeTieBreaker(hex("ff ff ff ff ff ff ff ff"))).toBe(2n ** 64n - 1n);
    expect(decodeTieBreaker(hex("ff ff ff ff"))).toBeUndefined();
    expect(decodeEmpty(new Uint8Array(0))).toBe(true);
    expect(decodeEmpty(new Uint8Array(1))).toBeUndefined();
    expect(decodeChannelNumber(hex("40 00 00 00"))).toBe(0x4000);
    expect(decodeChannelNumber(hex("40 00"))).toBeUndefined();
    expect(decodeRequestedTransport(hex("11 00 00 00"))).toBe(17);
    expect(decodeRequestedTransport(hex("11"))).toBeUndefined();
    expect(decodeAddressFamily(hex("01 00 00 00"))).toBe(4);
    expect(decodeAddressFamily(hex("02 00 00 00"))).toBe(6);
    expect(decodeAddressFamily(hex("03 00 00 00"))).toBeUndefined();
    expect(decodeEvenPort(hex("80"))).toEqual({ reserveNext: true });
    expect(decodeEvenPort(hex("7f"))).toEqual({ reserveNext: false });
    expect(decodeEvenPort(hex("80 00"))).toBeUndefined();
    expect(decodeReservationToken(new Uint8Array(7))).toBeUndefined();
    expect(decodeUserHash(new Uint8Array(31))).toBeUndefined();
  });
});

/** Every typed view of a message, so the fuzz pass reaches each decoder through the getters. */
function readEverything(m: StunMessage): unknown[] {
  return [
    m.mappedAddress(), m.xorMappedAddress(), m.alternateServer(), m.errorCode(), m.unknownAttributes(), m.username(),
    m.userHash(), m.realm(), m.nonce(), m.software(), m.passwordAlgorithm(), m.passwordAlgorithms(), m.xorPeerAddress(),
    m.xorPeerAddresses(), m.xorRelayedAddress(), m.xorRelayedAddresses(), m.lifetime(), m.requestedTransport(),
    m.requestedAddressFamily(), m.additionalAddressFamily(), m.addressErrorCode(), m.channelNumber(), m.data(),
    m.dontFragment(), m.evenPort(), m.reservationToken(), m.priority(), m.useCandidate(), m.iceControlled(),
    m.iceControlling(), m.unknownComprehensionRequired(),
  ];
}

const VALUE_DECODERS: ((value: Uint8Array) => unknown)[] = [
  decodeAddress, (v) => decodeXorAddress(v, RFC5769_TRANSACTION_ID), decodeErrorCode, decodeAddressErrorCode, decodeUnknownAttributes,
  decodeUsername, decodeShortText, decodeUserHash, decodeU32, decodeTieBreaker, decodeEmpty, decodeChannelNumber,
  decodeRequestedTransport, decodeAddressFamily, decodeEvenPort, decodeReservationToken, decodePasswordAlgorithm,
  decodePasswordAlgorithms,
];

/** Runs f; a throw fails the test with the replay context instead of the bare error. */
function noThrow(f: () => unknown, where: () => string): void {
  try {
    f();
  } catch (error) {
    throw new Error(`threw ${String(error)} ${where()}`);
  }
}

const KNOWN_TYPES = [...KNOWN_ATTRIBUTES];

describe("fuzz", () => {
  it("random attribute sequences never make decodeStun, a getter or a value decoder throw", () => {
    const r = rng("stun/fuzz-random");
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      // A header, then attributes of known and random types with random values, then sometimes
      // random junk: most of it decodes, so the getters see random values of their own types.
      const parts: Uint8Array[] = [hex("00 01 00 00 21 12 a4 42"), r.bytes(12)];
      for (let n = r.int(0, 6); n > 0; n--) {
        const type = r.bool(0.8) ? r.pick(KNOWN_TYPES) : r.int(0, 0xffff);
        const value = r.bytes(r.pick([0, 1, 2, 4, 8, 20, r.int(0, 40)]));
        const header = Uint8Array.of(type >> 8, type, 0, value.length);
        parts.push(header, value, new Uint8Array(((value.length + 3) & ~3) - value.length));
      }
      if (r.bool(0.1)) parts.push(r.bytes(r.int(0, 8)));
      const bytes = concat(...parts);
      const length = r.bool(0.9) ? bytes.length - 20 : r.int(0, 0xffff);
      bytes[2] = length >> 8;
      bytes[3] = length;
      if (r.bool(0.05)) bytes[r.int(0, bytes.length - 1)] = r.int(0, 255);
      const where = (): string => r.where(toHex(bytes));
      let result: StunDecoded | undefined;
      noThrow(() => (result = decodeStun(bytes)), where);
      if (result!.ok) {
        accepted++;
        const m = result!.message;
        noThrow(() => readEverything(m), where);
      }
      const value = bytes.subarray(r.int(0, bytes.length), bytes.length);
      for (const decoder of VALUE_DECODERS) noThrow(() => decoder(value), where);
    }
    expect(accepted, "the generator must reach the getters").toBeGreaterThan(10000);
  });

  it("random bytes and mutated valid messages never make decodeStun or a getter throw", () => {
    const r = rng("stun/fuzz-mutated");
    const seeds = [RFC5769_REQUEST, RFC5769_IPV4_RESPONSE, RFC5769_IPV6_RESPONSE, RFC5769_LONG_TERM_REQUEST, RFC8489_B1_REQUEST];
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      const bytes = r.bool(0.1) ? r.bytes(r.int(0, 100)) : r.pick(seeds).slice();
      for (let k = bytes.length > 0 ? r.int(1, 4) : 0; k > 0; k--) {
        const at = r.int(0, bytes.length - 1);
        bytes[at] = r.pick([0, 0xff, bytes[at]! ^ (1 << r.int(0, 7)), r.int(0, 255)]);
      }
      const input = r.bool(0.2) ? bytes.subarray(0, r.int(0, bytes.length)) : bytes;
      const where = (): string => r.where(toHex(input));
      let result: StunDecoded | undefined;
      noThrow(() => (result = decodeStun(input)), where);
      if (result!.ok) {
        accepted++;
        const m = result!.message;
        noThrow(() => readEverything(m), where);
        noThrow(() => verifyIntegrity(m, input, shortTermKey("x")), where);
        noThrow(() => verifyIntegritySha256(m, input, shortTermKey("x")), where);
      }
    }
    expect(accepted).toBeGreaterThan(100);
  });
});
