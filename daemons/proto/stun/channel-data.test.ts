// ChannelData framing (RFC 8656 §12.4, §12.5) against a DataView oracle written from the RFC's
// figure, the channel range edges, padding both ways, the RFC 7983 §7 first-byte table, stream
// framing, and a fuzz pass.

import { beforeEach, describe, expect, it } from "vitest";
import { hex, toHex } from "../../../test/support/bytes.js";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import { decodeChannelData, encodeChannelData, firstByteKind, isAcceptedChannelNumber, isChannelNumber, streamFrameSize, type FirstByteKind } from "./channel-data.js";
import { StunBuilder } from "./builder.js";

beforeEach(reportSeedOnFailure);

/** The oracle: RFC 8656 §12.4's figure read with DataView. */
function oracleDecode(bytes: Uint8Array): { channel: number; data: Uint8Array } | undefined {
  if (bytes.length < 4) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const channel = view.getUint16(0);
  const length = view.getUint16(2);
  // RFC 5766 §11's range: servers still accept what RFC 8656 narrowed (CHANNEL_NUMBER_LEGACY_MAX).
  if (channel < 0x4000 || channel > 0x7fff) return undefined;
  if (bytes.length < 4 + length || bytes.length > 4 + Math.ceil(length / 4) * 4) return undefined;
  return { channel, data: bytes.slice(4, 4 + length) };
}

function oracleEncode(channel: number, data: Uint8Array, padded: boolean): Uint8Array {
  const out = new Uint8Array(4 + (padded ? Math.ceil(data.length / 4) * 4 : data.length));
  const view = new DataView(out.buffer);
  view.setUint16(0, channel);
  view.setUint16(2, data.length);
  out.set(data, 4);
  return out;
}

describe("ChannelData", () => {
  it("encodes and decodes as the DataView oracle does, padded or not", () => {
    const r = rng("channel-data/differential");
    for (let i = 0; i < 5000; i++) {
      const channel = r.int(0x4000, 0x4fff);
      const data = r.bytes(r.int(0, i < 500 ? 8 : 1500));
      const padded = r.bool();
      const bytes = encodeChannelData(channel, data, { padded });
      const where = r.where(toHex(bytes.subarray(0, 16)));
      expect(toHex(bytes), where).toBe(toHex(oracleEncode(channel, data, padded)));
      if (padded) expect(bytes.length % 4, where).toBe(0);
      const result = decodeChannelData(bytes);
      expect(result.ok && { channel: result.channel, data: toHex(result.data) }, where).toEqual({ channel, data: toHex(data) });
    }
  });

  it("a client binds 0x4000-0x4FFF (RFC 8656 §12); ChannelData of RFC 5766's 0x4000-0x7FFF still decodes and encodes", () => {
    const cases = [[0x3fff, false, false], [0x4000, true, true], [0x4fff, true, true], [0x5000, false, true], [0x7fff, false, true], [0x8000, false, false], [0, false, false]] as const;
    for (const [channel, bindable, accepted] of cases) {
      expect(isChannelNumber(channel), channel.toString(16)).toBe(bindable);
      expect(isAcceptedChannelNumber(channel), channel.toString(16)).toBe(accepted);
      const bytes = oracleEncode(channel, hex("01 02 03"), false);
      expect(decodeChannelData(bytes).ok, channel.toString(16)).toBe(accepted);
      if (!accepted) expect(() => encodeChannelData(channel, new Uint8Array(0))).toThrow(RangeError);
    }
  });

  it("tolerates up to 3 bytes of padding, refuses more or a short datagram", () => {
    const data = hex("aa bb cc dd ee");
    const base = encodeChannelData(0x4001, data);
    expect(base.length).toBe(9);
    for (let extra = 0; extra <= 4; extra++) {
      const bytes = new Uint8Array(base.length + extra).fill(0x5a);
      bytes.set(base);
      const result = decodeChannelData(bytes);
      if (extra <= 3) expect(result.ok && toHex(result.data), `${extra} padding bytes`).toBe(toHex(data));
      else expect(result.ok ? "ok" : result.reason).toBe("trailing-bytes");
    }
    expect(decodeChannelData(base.subarray(0, 8))).toMatchObject({ ok: false, reason: "truncated" });
    expect(decodeChannelData(base.subarray(0, 3))).toMatchObject({ ok: false, reason: "short" });
    expect(decodeChannelData(hex("40 00 00 00"))).toMatchObject({ ok: true, channel: 0x4000 });
  });

  it("fuzz: random bytes never throw and agree with the oracle", () => {
    const r = rng("channel-data/fuzz");
    for (let i = 0; i < 20000; i++) {
      const bytes = r.bytes(r.int(0, 40));
      if (bytes.length >= 4 && r.bool(0.7)) {
        bytes[0] = 0x40 | (bytes[0]! & 0x1f);
        bytes[2] = 0;
        bytes[3] = Math.max(0, bytes.length - 4 - r.int(-2, 4));
      }
      const result = decodeChannelData(bytes);
      const oracle = oracleDecode(bytes);
      expect(result.ok ? { channel: result.channel, data: toHex(result.data) } : undefined, r.where(toHex(bytes)))
        .toEqual(oracle && { channel: oracle.channel, data: toHex(oracle.data) });
    }
  });
});

describe("demultiplexing", () => {
  it("classifies every first byte as the RFC 7983 §7 table does", () => {
    const table: [number, number, FirstByteKind][] = [
      [0, 3, "stun"], [4, 15, "other"], [16, 19, "zrtp"], [20, 63, "dtls"], [64, 79, "channel-data"], [80, 127, "other"],
      [128, 191, "rtp"], [192, 255, "other"],
    ];
    for (const [lo, hi, kind] of table) for (let b = lo; b <= hi; b++) expect(firstByteKind(b), String(b)).toBe(kind);
  });

  it("sizes STUN and ChannelData frames at the start of a stream (RFC 8656 §12.5)", () => {
    const stun = new StunBuilder(1, "request", new Uint8Array(12)).addSoftware("abcde").build();
    expect(streamFrameSize(stun)).toBe(stun.length);
    expect(streamFrameSize(encodeChannelData(0x4000, new Uint8Array(5), { padded: true }))).toBe(12);
    expect(streamFrameSize(encodeChannelData(0x4000, new Uint8Array(8)))).toBe(12);
    expect(streamFrameSize(stun.subarray(0, 3))).toBeUndefined();
    expect(streamFrameSize(hex("17 03 03 00 10"))).toBeUndefined(); // a TLS record
  });
});
