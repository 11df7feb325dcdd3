// The key codec against the RFC 4648 §10 vectors, and against node's Buffer as the oracle for
// random bytes: Buffer decodes leniently, so "Buffer re-encodes the text to itself" is exactly
// "the text is canonical", which is what decodeBase64 must accept and nothing more.

import { beforeEach, describe, expect, it } from "vitest";
import { hex } from "../../../test/support/bytes.js";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import { decodeBase64, encodeBase64 } from "./base64.js";

beforeEach(reportSeedOnFailure);

const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** RFC 4648 §10, "Test Vectors", BASE64 column. */
const RFC4648_VECTORS: [string, string][] = [
  ["", ""],
  ["f", "Zg=="],
  ["fo", "Zm8="],
  ["foo", "Zm9v"],
  ["foob", "Zm9vYg=="],
  ["fooba", "Zm9vYmE="],
  ["foobar", "Zm9vYmFy"],
];

/** Strings some decoder accepts (atob or Buffer) that name no bytes canonically, or no bytes at all. */
const INVALID: [string, string][] = [
  ["Zg", "missing padding"],
  ["Zg=", "missing one pad"],
  ["Zm9vY", "length not a multiple of 4"],
  ["Zh==", "non-zero trailing bits, one byte"],
  ["Zm9=", "non-zero trailing bits, two bytes"],
  ["Zm8=Zm8=", "padding before the end"],
  ["Z===", "three pads"],
  ["====", "only padding"],
  ["Zm9v====", "a whole quad of padding"],
  ["=Zm9", "padding first"],
  ["Zm-v", "base64url character -"],
  ["Zm_v", "base64url character _"],
  ["Zm9v\n", "trailing newline"],
  [" Zm9v", "leading space"],
  ["Zm 9v", "inner space"],
  ["Zm9\u00e9", "non-ASCII"],
  ["Zm9\u0100", "char code above 255"],
  ["Zm9\u0000", "NUL"],
];

describe("base64", () => {
  it("encodes and decodes the RFC 4648 §10 vectors", () => {
    for (const [plain, encoded] of RFC4648_VECTORS) {
      expect(encodeBase64(ascii(plain)), plain).toBe(encoded);
      expect(decodeBase64(encoded), encoded).toEqual(ascii(plain));
    }
  });

  it("reads WireGuard keys as `wg genkey` prints them (wg(8) example, bytes from Buffer)", () => {
    const key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const bytes = hex("c809f3e5317e9575c9b5ed78b638b7ce530dabe85ddab614220241801ddf0669");
    expect(decodeBase64(key)).toEqual(bytes);
    expect(encodeBase64(bytes)).toBe(key);
    expect(decodeBase64("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBml="), "last character with a trailing bit set").toBeUndefined();
  });

  it("refuses non-canonical and malformed text", () => {
    for (const [text, why] of INVALID) expect(decodeBase64(text), `${JSON.stringify(text)}: ${why}`).toBeUndefined();
  });

  it("round-trips random bytes, matching Buffer both ways", () => {
    const r = rng("base64/round-trip");
    for (let i = 0; i < 3000; i++) {
      const bytes = r.bytes(r.int(0, i < 200 ? 8 : 200));
      const oracle = Buffer.from(bytes).toString("base64");
      expect(encodeBase64(bytes), r.where(`encode ${oracle}`)).toBe(oracle);
      expect(decodeBase64(oracle), r.where(`decode ${oracle}`)).toEqual(bytes);
    }
  });

  it("accepts exactly the texts Buffer re-encodes to themselves, and decodes them as Buffer does", () => {
    const r = rng("base64/canonical");
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      const text = nearBase64(r);
      const decoded = decodeBase64(text);
      const oracle = Buffer.from(text, "base64");
      const canonical = oracle.toString("base64") === text;
      expect(decoded !== undefined, r.where(`${JSON.stringify(text)} canonical=${canonical}`)).toBe(canonical);
      if (decoded !== undefined) {
        expect(decoded, r.where(JSON.stringify(text))).toEqual(new Uint8Array(oracle));
        accepted++;
      }
    }
    // The generator must land on both sides for the check to mean anything.
    expect(accepted).toBeGreaterThan(2000);
    expect(accepted).toBeLessThan(18000);
  });
});

/** Text that is often valid base64 and otherwise wrong in one of the ways decoders disagree on. */
function nearBase64(r: Rng): string {
  const quads = r.int(0, 4);
  let text = "";
  for (let i = 0; i < quads * 4; i++) text += ALPHABET[r.int(0, 63)];
  if (quads > 0 && r.bool(0.6)) {
    // Pad the last quad, zeroing its unused bits most of the time so canonical texts are common.
    const pads = r.int(1, 2);
    const keep = text.slice(0, -pads);
    const last = ALPHABET.indexOf(keep.at(-1)!);
    const unused = pads === 1 ? 0b11 : 0b1111;
    const fixed = r.bool(0.7) ? ALPHABET[last & ~unused]! : keep.at(-1)!;
    text = keep.slice(0, -1) + fixed + "=".repeat(pads);
  }
  if (r.bool(0.15) && text.length > 0) {
    const at = r.int(0, text.length - 1);
    const junk = r.pick(["=", "-", "_", " ", "\n", "A", "\u00ff", "%"]);
    text = r.bool() ? text.slice(0, at) + junk + text.slice(at + 1) : text.slice(0, at) + junk + text.slice(at);
  }
  return text;
}
