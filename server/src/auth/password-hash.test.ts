// Password hashes: @noble/hashes' argon2id against RFC 9106's known answer; our PHC strings against the
// reference implementation's (phc-winner-argon2 src/test.c); round trips; tampering with any part of a
// stored hash fails; malformed strings are refused, never thrown on.

import { argon2id } from "@noble/hashes/argon2.js";
import { describe, expect, it } from "vitest";
import { decodePhc, encodePhc, hashPassword, OWASP_ARGON2ID, verifyNothing, verifyPassword } from "./password-hash.js";

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

describe("argon2id", () => {
  it("matches RFC 9106 section 5.3 (secret and associated data included)", () => {
    const tag = argon2id(new Uint8Array(32).fill(1), new Uint8Array(16).fill(2), {
      m: 32,
      t: 3,
      p: 4,
      dkLen: 32,
      version: 0x13,
      key: new Uint8Array(8).fill(3),
      personalization: new Uint8Array(12).fill(4),
    });
    expect(hex(tag)).toBe("0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659");
  });
});

describe("PHC strings", () => {
  // From the reference implementation's tests (phc-winner-argon2 src/test.c, argon2id v19 CHECKs).
  const REFERENCE = [
    ["password", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"],
    ["password", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc"],
    ["password", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"],
  ] as const;

  it("verifies the reference implementation's hashes and re-encodes them byte for byte", async () => {
    for (const [password, phc] of REFERENCE) {
      expect(await verifyPassword(password, phc), phc).toBe(true);
      expect(await verifyPassword("passwore", phc), phc).toBe(false);
      expect(encodePhc(decodePhc(phc)!)).toBe(phc);
      expect(new TextDecoder().decode(decodePhc(phc)!.salt)).toBe("somesalt");
    }
  });

  it("hashes with OWASP's parameters and a fresh salt, and round-trips", async () => {
    const a = await hashPassword("correct horse battery staple");
    const b = await hashPassword("correct horse battery staple");
    expect(a).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(a).not.toBe(b);
    expect(decodePhc(a)!.params).toEqual(OWASP_ARGON2ID);
    expect(await verifyPassword("correct horse battery staple", a)).toBe(true);
    expect(await verifyPassword("correct horse battery stapl", a)).toBe(false);
    expect(await verifyPassword("", a)).toBe(false);
    expect(await verifyPassword("pässwörd", await hashPassword("pässwörd", { m: 64, t: 1, p: 1 }))).toBe(true);
  });

  it("a change to any part of a stored hash makes it fail: parameters, salt or hash", async () => {
    const [password, phc] = REFERENCE[0];
    const tampered = [
      phc.replace("m=256", "m=264"),
      phc.replace("t=2", "t=3"),
      phc.replace("p=1", "p=2"),
      phc.replace("c29tZXNhbHQ", "c29tZXNhbHU"),
      phc.replace("nf65", "nf66"),
      phc.replace("i/4", "i/8"),
    ];
    for (const text of tampered) {
      expect(decodePhc(text), text).toBeDefined();
      expect(await verifyPassword(password, text), text).toBe(false);
    }
  });

  it("refuses malformed and foreign strings without throwing", async () => {
    const [password, phc] = REFERENCE[0];
    for (const text of [
      "",
      "password",
      phc.replace("argon2id", "argon2i"),
      phc.replace("v=19", "v=16"),
      phc.replace("$v=19", ""),
      phc.replace("m=256,t=2,p=1", "t=2,m=256,p=1"),
      phc.replace("m=256", "m=0256"),
      phc.replace("m=256", "m=4"),
      phc.replace("m=256", "m=99999999999"),
      phc.replace("t=2", "t=0"),
      phc.replace("p=1", "p=99"),
      `${phc}=`,
      phc.replace("/4", "_4"),
      phc.replace("c29tZXNhbHQ", "c29t"),
      phc.replace("c29tZXNhbHQ", "c29tZXNhbHQ="),
      `${phc}$extra`,
      phc.slice(0, 30),
    ]) {
      expect(decodePhc(text), text).toBeUndefined();
      expect(await verifyPassword(password, text), text).toBe(false);
    }
  });

  it("refuses overlong passwords, and the dummy verification answers false", async () => {
    await expect(hashPassword("x".repeat(1025))).rejects.toThrow(RangeError);
    expect(await verifyNothing("anything")).toBe(false);
  });
});
