// The checksums and keys against node's implementations: our table-driven CRC-32 against
// zlib.crc32 (Node >= 20.15), MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT of built messages
// recomputed with node:crypto and node:zlib straight from RFC 8489 §14.5-14.7, the long-term keys
// against createHash. Then tamper evidence: any flipped bit in the part an HMAC covers fails
// decoding or verification, and FINGERPRINT catches every flipped bit but those that turn it into
// another attribute type.

import { createHash, createHmac } from "node:crypto";
import { crc32 as zlibCrc32 } from "node:zlib";
import { beforeEach, describe, expect, it } from "vitest";
import { toHex, utf8 } from "../../../test/support/bytes.js";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import { StunBuilder } from "./builder.js";
import { ATTR_FINGERPRINT, ATTR_MESSAGE_INTEGRITY, ATTR_MESSAGE_INTEGRITY_SHA256, PASSWORD_ALGORITHM_MD5, PASSWORD_ALGORITHM_SHA256 } from "./constants.js";
import { crc32, longTermKey, prepareSecret, shortTermKey, userHash, verifyIntegrity, verifyIntegritySha256 } from "./integrity.js";
import { decodeStun, type StunMessage } from "./message.js";

beforeEach(reportSeedOnFailure);

const PRINTABLE_ASCII = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i));
const ascii = (r: Rng, max: number): string => Array.from({ length: r.int(0, max) }, () => r.pick(PRINTABLE_ASCII)).join("");

function decoded(bytes: Uint8Array): StunMessage {
  const result = decodeStun(bytes);
  if (!result.ok) throw new Error(`${result.reason}: ${result.detail}`);
  return result.message;
}

/** A random message with a few attributes of random types (so the attribute walk and padding vary). */
function randomMessage(r: Rng): StunBuilder {
  const b = new StunBuilder(r.int(0, 0xfff), r.pick(["request", "indication", "success", "error"] as const), r.bytes(12));
  for (let n = r.int(0, 5); n > 0; n--) {
    const kind = r.int(0, 3);
    if (kind === 0) b.addUsername(ascii(r, 30));
    else if (kind === 1) b.addData(r.bytes(r.int(0, 50)));
    else if (kind === 2) b.addXorPeerAddress({ family: 6, address: "2001:db8::" + r.int(0, 0xffff).toString(16), port: r.int(0, 65535) });
    else b.add(r.int(0x8030, 0xffff), r.bytes(r.int(0, 9)));
  }
  return b;
}

describe("CRC-32", () => {
  it("matches the check value and zlib.crc32 on random input, whole and in pieces", () => {
    expect(crc32(utf8("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    const r = rng("stun/crc32");
    for (let i = 0; i < 2000; i++) {
      const bytes = r.bytes(r.int(0, i < 100 ? 8 : 2000));
      const where = r.where(toHex(bytes.subarray(0, 32)));
      expect(crc32(bytes), where).toBe(zlibCrc32(bytes));
      const cut = r.int(0, bytes.length);
      expect(crc32(bytes.subarray(cut), crc32(bytes.subarray(0, cut))), where).toBe(zlibCrc32(bytes));
    }
  });
});

describe("MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256, FINGERPRINT against node:crypto and node:zlib", () => {
  it("recomputes each from RFC 8489 §14.5-14.7 with node and finds the same bytes", () => {
    const r = rng("stun/integrity-differential");
    for (let i = 0; i < 1000; i++) {
      const key = r.bytes(r.int(0, 100)); // past SHA-1's 64-byte block too, where HMAC hashes the key first
      const key256 = r.bytes(r.int(0, 100));
      const length256 = r.pick([16, 20, 24, 28, 32]);
      const bytes = randomMessage(r).build({ integrity: key, integritySha256: key256, integritySha256Length: length256, fingerprint: true });
      const m = decoded(bytes);
      const where = r.where(toHex(bytes));
      const withLength = (end: number, length: number): Buffer => {
        const prefix = Buffer.from(bytes.subarray(0, end));
        prefix.writeUInt16BE(length, 2);
        return prefix;
      };

      const mi = m.get(ATTR_MESSAGE_INTEGRITY)!;
      const miInput = withLength(mi.offset, mi.offset + 24 - 20);
      expect(toHex(mi.value), where).toBe(createHmac("sha1", key).update(miInput).digest("hex"));

      const mi256 = m.get(ATTR_MESSAGE_INTEGRITY_SHA256)!;
      const mi256Input = withLength(mi256.offset, mi256.offset + 4 + length256 - 20);
      expect(toHex(mi256.value), where).toBe(createHmac("sha256", key256).update(mi256Input).digest("hex").slice(0, 2 * length256));

      const fp = m.get(ATTR_FINGERPRINT)!;
      expect(Buffer.from(fp.value).readUInt32BE(0), where).toBe((zlibCrc32(bytes.subarray(0, fp.offset)) ^ 0x5354554e) >>> 0);

      expect(verifyIntegrity(m, bytes, key), where).toEqual({ ok: true });
      expect(verifyIntegritySha256(m, bytes, key256, { minimumLength: length256 }), where).toEqual({ ok: true });
    }
  });
});

describe("keys", () => {
  it("long-term keys are MD5 / SHA-256 of username:realm:password, ASCII passed through unchanged", () => {
    const r = rng("stun/keys");
    for (let i = 0; i < 500; i++) {
      const [username, realm, password] = [ascii(r, 40), ascii(r, 40), ascii(r, 40)];
      const input = `${username}:${realm}:${password}`;
      const where = r.where(JSON.stringify(input));
      expect(prepareSecret(password), where).toBe(password);
      expect(toHex(longTermKey(username, realm, password)), where).toBe(createHash("md5").update(input).digest("hex"));
      expect(toHex(longTermKey(username, realm, password, PASSWORD_ALGORITHM_MD5)), where).toBe(createHash("md5").update(input).digest("hex"));
      expect(toHex(longTermKey(username, realm, password, PASSWORD_ALGORITHM_SHA256)), where).toBe(createHash("sha256").update(input).digest("hex"));
      expect(toHex(userHash(username, realm)), where).toBe(createHash("sha256").update(`${username}:${realm}`).digest("hex"));
      expect(toHex(shortTermKey(password)), where).toBe(Buffer.from(password, "utf8").toString("hex"));
    }
    expect(() => longTermKey("u", "r", "p", 3 as never)).toThrow(RangeError);
  });

  it("prepares secrets as SASLprep maps them (RFC 4013 §2.1-2.2): B.1 dropped, non-ASCII spaces to U+0020, NFKC", () => {
    expect(prepareSecret("The\u00adM\u00aatr\u2168")).toBe("TheMatrIX"); // RFC 5769 §2.4
    expect(prepareSecret("a\u00a0b\u3000c")).toBe("a b c");
    expect(prepareSecret("a\u200bb\ufeffc\u200dd")).toBe("abcd");
    expect(prepareSecret("\ufb01")).toBe("fi"); // a compatibility ligature
    expect(prepareSecret("e\u0301")).toBe("\u00e9"); // composed
  });
});

describe("tamper evidence", () => {
  it("a flipped bit anywhere MESSAGE-INTEGRITY covers (header to its end) fails decoding or verification", () => {
    const r = rng("stun/flip-integrity");
    let tried = 0;
    for (let i = 0; i < 300; i++) {
      const key = r.bytes(r.int(1, 40));
      const sha256 = r.bool();
      const bytes = randomMessage(r).build(sha256 ? { integritySha256: key } : { integrity: key });
      const protectedEnd = bytes.length; // the integrity attribute is last
      for (let bit = 0; bit < protectedEnd * 8; bit += r.int(1, 5)) {
        const flipped = bytes.slice();
        flipped[bit >> 3]! ^= 0x80 >> (bit & 7);
        const result = decodeStun(flipped);
        const verified = result.ok && (sha256 ? verifyIntegritySha256(result.message, flipped, key, { minimumLength: 16 }) : verifyIntegrity(result.message, flipped, key)).ok;
        expect(verified, r.where(`bit ${bit} of ${toHex(bytes)}`)).toBe(false);
        tried++;
      }
    }
    expect(tried).toBeGreaterThan(10000);
  });

  it("a flipped bit never leaves a message that still carries a FINGERPRINT", () => {
    // The flips that decode at all are those that stop the last attribute from being a FINGERPRINT:
    // one in its type field, or a Length before it grown to swallow it. Nothing else gets through.
    const r = rng("stun/flip-fingerprint");
    let decodedWithout = 0;
    let flips = 0;
    for (let i = 0; i < 300; i++) {
      const bytes = randomMessage(r).build({ fingerprint: true });
      for (let bit = 0; bit < bytes.length * 8; bit++) {
        const flipped = bytes.slice();
        flipped[bit >> 3]! ^= 0x80 >> (bit & 7);
        const result = decodeStun(flipped);
        flips++;
        if (!result.ok) continue;
        expect(result.message.has(ATTR_FINGERPRINT), r.where(`bit ${bit} of ${toHex(bytes)}`)).toBe(false);
        decodedWithout++;
      }
    }
    expect(decodedWithout / flips).toBeLessThan(0.05);
  });
});
