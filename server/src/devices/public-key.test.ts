// Public key validation: real X25519 keys pass in their one canonical form; wrong lengths, other
// alphabets, non-canonical padding bits and points of small order are refused.

import { x25519 } from "@noble/curves/ed25519.js";
import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import { checkPublicKey } from "./public-key.js";

beforeEach(reportSeedOnFailure);

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");

describe("device public keys", () => {
  it("accept real X25519 public keys as wg prints them", () => {
    const r = rng("public keys");
    for (let i = 0; i < 200; i++) {
      const key = b64(x25519.getPublicKey(r.bytes(32)));
      expect(checkPublicKey(key), r.where(key)).toEqual({ ok: true, key });
    }
  });

  it("refuse what is not 32 bytes of canonical base64", () => {
    const key = b64(x25519.getPublicKey(new Uint8Array(32).fill(7)));
    for (const bad of [
      undefined,
      null,
      42,
      [key],
      "",
      key.slice(0, -1),
      `${key}=`,
      ` ${key}`,
      b64(new Uint8Array(31).fill(9)),
      b64(new Uint8Array(33).fill(9)),
      Buffer.from(x25519.getPublicKey(new Uint8Array(32).fill(8))).toString("base64url"),
      `${key.slice(0, 42)}B=`, // the last character's low 2 bits are padding and must be 0
      key.replace(/[A-Za-z0-9]/, "!"),
    ]) {
      const checked = checkPublicKey(bad);
      expect(checked.ok, JSON.stringify(bad)).toBe(false);
      expect(checked.ok === false && checked.code).toBe("invalid");
    }
  });

  it("refuse points of small order, with and without the ignored top bit", () => {
    const zero = new Uint8Array(32);
    const one = new Uint8Array(32);
    one[0] = 1;
    const p = Uint8Array.from(Buffer.from("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "hex"));
    const order8 = Uint8Array.from(Buffer.from("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", "hex"));
    for (const point of [zero, one, p, order8]) {
      for (const top of [0, 0x80]) {
        const bytes = Uint8Array.from(point);
        bytes[31]! |= top;
        const checked = checkPublicKey(b64(bytes));
        expect(checked, b64(bytes)).toMatchObject({ ok: false, code: "small_order" });
      }
    }
    // What makes them dangerous: the shared secret is the same whatever our private key is.
    expect(() => x25519.getSharedSecret(new Uint8Array(32).fill(3), order8)).toThrow();
  });
});
