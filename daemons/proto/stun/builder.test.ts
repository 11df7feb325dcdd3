// The builder and decoder together: random messages of every typed attribute, built with random
// integrity options, decode to the same values in the same order, and verify (property test,
// seeded, many messages per run). Expected IPv6 text comes from node's URL parser, not from our
// formatter. Then the refusals: builder input that cannot be encoded throws.

import { beforeEach, describe, expect, it } from "vitest";
import { toHex } from "../../../test/support/bytes.js";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import {
  decodeAddress, decodeAddressErrorCode, decodeAddressFamily, decodeChannelNumber, decodeEmpty, decodeErrorCode,
  decodeEvenPort, decodePasswordAlgorithm, decodePasswordAlgorithms, decodeRequestedTransport, decodeReservationToken,
  decodeShortText, decodeTieBreaker, decodeU32, decodeUnknownAttributes, decodeUserHash, decodeUsername, decodeXorAddress,
  type TransportAddress,
} from "./attributes.js";
import { StunBuilder } from "./builder.js";
import {
  ATTR_ADDITIONAL_ADDRESS_FAMILY, ATTR_ADDRESS_ERROR_CODE, ATTR_ALTERNATE_SERVER, ATTR_CHANNEL_NUMBER, ATTR_DATA,
  ATTR_DONT_FRAGMENT, ATTR_ERROR_CODE, ATTR_EVEN_PORT, ATTR_FINGERPRINT, ATTR_ICE_CONTROLLED, ATTR_ICE_CONTROLLING,
  ATTR_LIFETIME, ATTR_MAPPED_ADDRESS, ATTR_MESSAGE_INTEGRITY, ATTR_MESSAGE_INTEGRITY_SHA256, ATTR_NONCE,
  ATTR_PASSWORD_ALGORITHM, ATTR_PASSWORD_ALGORITHMS, ATTR_PRIORITY, ATTR_REALM, ATTR_REQUESTED_ADDRESS_FAMILY,
  ATTR_REQUESTED_TRANSPORT, ATTR_RESERVATION_TOKEN, ATTR_SOFTWARE, ATTR_UNKNOWN_ATTRIBUTES, ATTR_USE_CANDIDATE,
  ATTR_USERHASH, ATTR_USERNAME, ATTR_XOR_MAPPED_ADDRESS, ATTR_XOR_PEER_ADDRESS, ATTR_XOR_RELAYED_ADDRESS,
} from "./constants.js";
import { verifyIntegrity, verifyIntegritySha256 } from "./integrity.js";
import { decodeStun, type StunClass, type StunMessage } from "./message.js";

beforeEach(reportSeedOnFailure);

const CHARACTERS = ["a", "Z", "0", " ", ":", "/", "é", "€", "マ", "\u{1d11e}"];
const text = (r: Rng, max: number): string => Array.from({ length: r.int(0, max) }, () => r.pick(CHARACTERS)).join("");

/** A random address, given to the builder in long form; expected back in the form URL prints. */
function randomAddress(r: Rng): { input: TransportAddress; expected: TransportAddress } {
  const port = r.int(0, 65535);
  if (r.bool()) {
    const address = Array.from(r.bytes(4)).join(".");
    return { input: { family: 4, address, port }, expected: { family: 4, address, port } };
  }
  // Zero words are common, so "::" runs of every length and position occur.
  const words = Array.from({ length: 8 }, () => (r.bool(0.4) ? 0 : r.int(0, 0xffff)).toString(16));
  const long = words.join(":");
  const canonical = new URL(`http://[${long}]/`).hostname.slice(1, -1);
  return { input: { family: 6, address: long, port }, expected: { family: 6, address: canonical, port } };
}

/** One attribute kind: how to add a random value, and how to read a value of that type back. */
interface Kind {
  type: number;
  add(r: Rng, b: StunBuilder): unknown;
  read(value: Uint8Array, transactionId: Uint8Array): unknown;
}

const kinds: Kind[] = [
  { type: ATTR_MAPPED_ADDRESS, add: (r, b) => { const a = randomAddress(r); b.addMappedAddress(a.input); return a.expected; }, read: decodeAddress },
  { type: ATTR_XOR_MAPPED_ADDRESS, add: (r, b) => { const a = randomAddress(r); b.addXorMappedAddress(a.input); return a.expected; }, read: decodeXorAddress },
  { type: ATTR_XOR_PEER_ADDRESS, add: (r, b) => { const a = randomAddress(r); b.addXorPeerAddress(a.input); return a.expected; }, read: decodeXorAddress },
  { type: ATTR_XOR_RELAYED_ADDRESS, add: (r, b) => { const a = randomAddress(r); b.addXorRelayedAddress(a.input); return a.expected; }, read: decodeXorAddress },
  { type: ATTR_ALTERNATE_SERVER, add: (r, b) => { const a = randomAddress(r); b.addAlternateServer(a.input); return a.expected; }, read: decodeAddress },
  {
    type: ATTR_ERROR_CODE,
    add: (r, b) => { const e = { code: r.int(300, 699), reason: text(r, 40) }; b.addErrorCode(e.code, e.reason); return e; },
    read: decodeErrorCode,
  },
  {
    type: ATTR_ADDRESS_ERROR_CODE,
    add: (r, b) => {
      const e = { family: r.pick([4, 6] as const), code: r.int(300, 699), reason: text(r, 40) };
      b.addAddressErrorCode(e.family, e.code, e.reason);
      return e;
    },
    read: decodeAddressErrorCode,
  },
  {
    type: ATTR_UNKNOWN_ATTRIBUTES,
    add: (r, b) => { const t = Array.from({ length: r.int(0, 5) }, () => r.int(0, 0xffff)); b.addUnknownAttributes(t); return t; },
    read: decodeUnknownAttributes,
  },
  { type: ATTR_USERNAME, add: (r, b) => { const t = text(r, 100); b.addUsername(t); return t; }, read: decodeUsername },
  { type: ATTR_USERHASH, add: (r, b) => { const h = r.bytes(32); b.addUserHash(h); return h; }, read: decodeUserHash },
  { type: ATTR_REALM, add: (r, b) => { const t = text(r, 127); b.addRealm(t); return t; }, read: decodeShortText },
  { type: ATTR_NONCE, add: (r, b) => { const t = text(r, 127); b.addNonce(t); return t; }, read: decodeShortText },
  { type: ATTR_SOFTWARE, add: (r, b) => { const t = text(r, 127); b.addSoftware(t); return t; }, read: decodeShortText },
  {
    type: ATTR_PASSWORD_ALGORITHM,
    add: (r, b) => { const e = { algorithm: r.int(0, 0xffff), parameters: r.bytes(r.int(0, 7)) }; b.addPasswordAlgorithm(e); return e; },
    read: decodePasswordAlgorithm,
  },
  {
    type: ATTR_PASSWORD_ALGORITHMS,
    add: (r, b) => {
      const e = Array.from({ length: r.int(1, 4) }, () => ({ algorithm: r.int(0, 0xffff), parameters: r.bytes(r.pick([0, 0, r.int(1, 9)])) }));
      b.addPasswordAlgorithms(e);
      return e;
    },
    read: decodePasswordAlgorithms,
  },
  { type: ATTR_LIFETIME, add: (r, b) => { const n = r.u32(); b.addLifetime(n); return n; }, read: decodeU32 },
  { type: ATTR_PRIORITY, add: (r, b) => { const n = r.u32(); b.addPriority(n); return n; }, read: decodeU32 },
  { type: ATTR_REQUESTED_TRANSPORT, add: (r, b) => { const n = r.int(0, 255); b.addRequestedTransport(n); return n; }, read: decodeRequestedTransport },
  {
    type: ATTR_REQUESTED_ADDRESS_FAMILY,
    add: (r, b) => { const f = r.pick([4, 6] as const); b.addRequestedAddressFamily(f); return f; },
    read: decodeAddressFamily,
  },
  {
    type: ATTR_ADDITIONAL_ADDRESS_FAMILY,
    add: (r, b) => { const f = r.pick([4, 6] as const); b.addAdditionalAddressFamily(f); return f; },
    read: decodeAddressFamily,
  },
  { type: ATTR_CHANNEL_NUMBER, add: (r, b) => { const n = r.int(0, 0xffff); b.addChannelNumber(n); return n; }, read: decodeChannelNumber },
  { type: ATTR_DATA, add: (r, b) => { const d = r.bytes(r.int(0, 100)); b.addData(d); return d; }, read: (v) => v },
  { type: ATTR_DONT_FRAGMENT, add: (_r, b) => { b.addDontFragment(); return true; }, read: decodeEmpty },
  { type: ATTR_USE_CANDIDATE, add: (_r, b) => { b.addUseCandidate(); return true; }, read: decodeEmpty },
  { type: ATTR_EVEN_PORT, add: (r, b) => { const e = r.bool(); b.addEvenPort(e); return { reserveNext: e }; }, read: decodeEvenPort },
  { type: ATTR_RESERVATION_TOKEN, add: (r, b) => { const t = r.bytes(8); b.addReservationToken(t); return t; }, read: decodeReservationToken },
  { type: ATTR_ICE_CONTROLLED, add: (r, b) => { const n = r.u64(); b.addIceControlled(n); return n; }, read: decodeTieBreaker },
  { type: ATTR_ICE_CONTROLLING, add: (r, b) => { const n = r.u64(); b.addIceControlling(n); return n; }, read: decodeTieBreaker },
];

/** The getter for each type, to check the first occurrence through the message's own API. */
const GETTERS = new Map<number, (m: StunMessage) => unknown>([
  [ATTR_MAPPED_ADDRESS, (m) => m.mappedAddress()], [ATTR_XOR_MAPPED_ADDRESS, (m) => m.xorMappedAddress()],
  [ATTR_XOR_PEER_ADDRESS, (m) => m.xorPeerAddress()], [ATTR_XOR_RELAYED_ADDRESS, (m) => m.xorRelayedAddress()],
  [ATTR_ALTERNATE_SERVER, (m) => m.alternateServer()], [ATTR_ERROR_CODE, (m) => m.errorCode()],
  [ATTR_ADDRESS_ERROR_CODE, (m) => m.addressErrorCode()], [ATTR_UNKNOWN_ATTRIBUTES, (m) => m.unknownAttributes()],
  [ATTR_USERNAME, (m) => m.username()], [ATTR_USERHASH, (m) => m.userHash()], [ATTR_REALM, (m) => m.realm()],
  [ATTR_NONCE, (m) => m.nonce()], [ATTR_SOFTWARE, (m) => m.software()], [ATTR_PASSWORD_ALGORITHM, (m) => m.passwordAlgorithm()],
  [ATTR_PASSWORD_ALGORITHMS, (m) => m.passwordAlgorithms()], [ATTR_LIFETIME, (m) => m.lifetime()], [ATTR_PRIORITY, (m) => m.priority()],
  [ATTR_REQUESTED_TRANSPORT, (m) => m.requestedTransport()], [ATTR_REQUESTED_ADDRESS_FAMILY, (m) => m.requestedAddressFamily()],
  [ATTR_ADDITIONAL_ADDRESS_FAMILY, (m) => m.additionalAddressFamily()], [ATTR_CHANNEL_NUMBER, (m) => m.channelNumber()],
  [ATTR_DATA, (m) => m.data()], [ATTR_DONT_FRAGMENT, (m) => m.dontFragment()], [ATTR_USE_CANDIDATE, (m) => m.useCandidate()],
  [ATTR_EVEN_PORT, (m) => m.evenPort()], [ATTR_RESERVATION_TOKEN, (m) => m.reservationToken()],
  [ATTR_ICE_CONTROLLED, (m) => m.iceControlled()], [ATTR_ICE_CONTROLLING, (m) => m.iceControlling()],
]);

const CLASSES: StunClass[] = ["request", "indication", "success", "error"];

describe("STUN builder → decoder round trip", () => {
  it("every typed attribute kind has a getter", () => {
    expect(kinds.map((k) => k.type).sort()).toEqual([...GETTERS.keys()].sort());
  });

  it("random messages decode to the values built, in order, and verify with their keys", () => {
    const r = rng("stun/round-trip");
    for (let i = 0; i < 3000; i++) {
      const method = r.int(0, 0xfff);
      const messageClass = r.pick(CLASSES);
      const transactionId = r.bytes(12);
      const builder = new StunBuilder(method, messageClass, transactionId);
      const expected: { type: number; value: unknown; read: Kind["read"] }[] = [];
      for (let n = r.int(0, 8); n > 0; n--) {
        const kind = r.pick(kinds);
        expected.push({ type: kind.type, value: kind.add(r, builder), read: kind.read });
      }
      const key = r.bool(0.5) ? r.bytes(r.int(0, 100)) : undefined;
      const key256 = r.bool(0.5) ? r.bytes(r.int(0, 100)) : undefined;
      const sha256Length = r.pick([16, 20, 24, 28, 32]);
      const fingerprint = r.bool();
      const bytes = builder.build({ integrity: key, integritySha256: key256, integritySha256Length: sha256Length, fingerprint });
      const where = r.where(toHex(bytes));

      const result = decodeStun(bytes);
      expect(result.ok, where).toBe(true);
      if (!result.ok) continue;
      const m = result.message;
      expect([m.method, m.class, toHex(m.transactionId)], where).toEqual([method, messageClass, toHex(transactionId)]);
      expect(m.ignored, where).toBe(0);
      const trailer = [
        ...(key ? [ATTR_MESSAGE_INTEGRITY] : []), ...(key256 ? [ATTR_MESSAGE_INTEGRITY_SHA256] : []), ...(fingerprint ? [ATTR_FINGERPRINT] : []),
      ];
      expect(m.attributes.map((a) => a.type), where).toEqual([...expected.map((e) => e.type), ...trailer]);
      expected.forEach((e, k) => {
        expect(e.read(m.attributes[k]!.value, transactionId), `${where} attribute ${k} type 0x${e.type.toString(16)}`).toEqual(e.value);
      });
      for (const type of new Set(expected.map((e) => e.type))) {
        expect(GETTERS.get(type)!(m), `${where} getter 0x${type.toString(16)}`).toEqual(expected.find((e) => e.type === type)!.value);
      }
      // Every padding byte is zero (RFC 8489 §14).
      for (const { value } of m.attributes) {
        for (let at = value.byteOffset + value.length; at % 4 !== 0; at++) expect(bytes[at], where).toBe(0);
      }
      if (key) expect(verifyIntegrity(m, bytes, key), where).toEqual({ ok: true });
      if (key256) {
        expect(m.get(ATTR_MESSAGE_INTEGRITY_SHA256)!.value.length, where).toBe(sha256Length);
        expect(verifyIntegritySha256(m, bytes, key256, { minimumLength: 16 }), where).toEqual({ ok: true });
        if (sha256Length < 32) expect(verifyIntegritySha256(m, bytes, key256), `${where} truncated`).toEqual({ ok: false, reason: "malformed" });
      }
      if (key && key.length > 0) {
        // (Not key + 0x00: HMAC pads short keys with zeros, so that is the same key.)
        const other = key.map((x, j) => (j === 0 ? x ^ 1 : x));
        expect(verifyIntegrity(m, bytes, other), `${where} another key`).toEqual({ ok: false, reason: "mismatch" });
      }
    }
  });
});

describe("STUN builder refuses what it cannot encode", () => {
  const id = new Uint8Array(12);
  const b = (): StunBuilder => new StunBuilder(1, "request", id);

  it("throws on bad header fields, addresses, numbers and text", () => {
    expect(() => new StunBuilder(0x1000, "request", id)).toThrow(RangeError);
    expect(() => new StunBuilder(1, "request", new Uint8Array(11))).toThrow(RangeError);
    expect(() => b().addXorMappedAddress({ family: 4, address: "1.2.3", port: 1 })).toThrow(TypeError);
    expect(() => b().addXorMappedAddress({ family: 4, address: "::1", port: 1 })).toThrow(TypeError);
    expect(() => b().addXorMappedAddress({ family: 6, address: "1.2.3.4", port: 1 })).toThrow(TypeError);
    expect(() => b().addMappedAddress({ family: 4, address: "1.2.3.4", port: 65536 })).toThrow(RangeError);
    expect(() => b().addErrorCode(299, "")).toThrow(RangeError);
    expect(() => b().addErrorCode(700, "")).toThrow(RangeError);
    expect(() => b().addRealm("a".repeat(128))).toThrow(RangeError);
    expect(() => b().addNonce("€".repeat(127) + "a".repeat(0))).not.toThrow(); // 381 bytes
    expect(() => b().addSoftware("\u{1d11e}".repeat(127) + "é")).toThrow(RangeError); // 128 characters
    expect(() => b().addUsername("a".repeat(509))).toThrow(RangeError);
    expect(() => b().addLifetime(-1)).toThrow(RangeError);
    expect(() => b().addLifetime(2 ** 32)).toThrow(RangeError);
    expect(() => b().addIceControlling(2n ** 64n)).toThrow(RangeError);
    expect(() => b().addReservationToken(new Uint8Array(7))).toThrow(RangeError);
    expect(() => b().addUserHash(new Uint8Array(20))).toThrow(RangeError);
    expect(() => b().addPasswordAlgorithms([])).toThrow(RangeError);
    expect(() => b().build({ integritySha256: new Uint8Array(1), integritySha256Length: 18 })).toThrow(RangeError);
    expect(() => b().addData(new Uint8Array(0xfff0)).addData(new Uint8Array(0x10)).build()).toThrow(RangeError);
  });
});
