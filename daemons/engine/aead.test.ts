// ChaCha20, Poly1305, ChaCha20-Poly1305, HChaCha20 and XChaCha20-Poly1305 of the engine, on both
// builds:
//   1. known answers typed in from RFC 8439 and draft-irtf-cfrg-xchacha-03, section by section;
//   2. every Wycheproof vector (../shared/vectors/wycheproof, C2SP/wycheproof testvectors_v1,
//      Apache-2.0), counted against the file's numberOfTests;
//   3. differential tests on seeded random inputs against node:crypto (OpenSSL) and @noble/ciphers.

import { createCipheriv, createDecipheriv } from "node:crypto";
import { chacha20 as nobleChacha20, chacha20poly1305, hchacha, xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { poly1305 as noblePoly1305 } from "@noble/ciphers/_poly1305.js";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BUILDS } from "../../test/support/engine.js";
import { concat, expectBytes, hex, toHex, utf8 } from "../../test/support/bytes.js";
import { reportSeedOnFailure, rng, type Rng } from "../../test/support/prng.js";
import { loadVectors } from "../../test/support/vectors.js";
import { Engine, EngineError } from "./index.js";

beforeEach(reportSeedOnFailure);

// --- Oracles -------------------------------------------------------------------------------------

function nodeSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  return new Uint8Array(Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]));
}

function nodeOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
  const ct = sealed.subarray(0, sealed.length - 16);
  const decipher = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  decipher.setAAD(aad, { plaintextLength: ct.length });
  try {
    return new Uint8Array(Buffer.concat([decipher.update(ct), decipher.final()]));
  } catch {
    return null;
  }
}

/** OpenSSL's raw ChaCha20: the 16-byte IV is the little-endian block counter, then the nonce. */
function nodeChacha20(key: Uint8Array, nonce: Uint8Array, data: Uint8Array, counter: number): Uint8Array {
  const iv = new Uint8Array(16);
  new DataView(iv.buffer).setUint32(0, counter, true);
  iv.set(nonce, 4);
  const cipher = createCipheriv("chacha20", key, iv);
  return new Uint8Array(Buffer.concat([cipher.update(data), cipher.final()]));
}

const SIGMA = new Uint32Array(utf8("expand 32-byte k").buffer);

function nobleHchacha20(key: Uint8Array, nonce: Uint8Array): Uint8Array {
  const out = new Uint32Array(8);
  hchacha(SIGMA, new Uint32Array(key.slice().buffer), new Uint32Array(nonce.slice().buffer), out);
  return new Uint8Array(out.buffer);
}

// --- Inputs --------------------------------------------------------------------------------------

/** Sizes where block, SIMD-group, first-pass (192 bytes) and padding logic change behaviour. */
const EDGE_SIZES = [0, 1, 15, 16, 17, 63, 64, 65, 191, 192, 193, 255, 256, 257, 1420, 16384, 65535];

/** The edge sizes plus a seeded spread: many small, some medium, a few up to 65535. */
function sizes(r: Rng, extra: number): number[] {
  const out = [...EDGE_SIZES];
  for (let i = 0; i < extra; i++) {
    const band = r.int(0, 9);
    out.push(band < 5 ? r.int(0, 1024) : band < 8 ? r.int(1025, 16384) : r.int(16385, 65535));
  }
  return out;
}

function aadLength(r: Rng): number {
  const band = r.int(0, 9);
  return band < 3 ? 0 : band < 7 ? r.int(1, 64) : band < 9 ? r.int(65, 600) : r.int(601, 4096);
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = bytes.slice();
  copy[bit >>> 3]! ^= 1 << (bit & 7);
  return copy;
}

// --- Vectors typed in from the specifications ----------------------------------------------------

const SUNSCREEN = utf8(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
);
const KEY_00_1F = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
const KEY_80_9F = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");

/** RFC 8439 §2.4.2: ChaCha20 encryption of the sunscreen text, block counter 1. */
const RFC8439_2_4_2 = {
  key: KEY_00_1F,
  nonce: hex("00:00:00:00:00:00:00:4a:00:00:00:00"),
  counter: 1,
  plaintext: SUNSCREEN,
  ciphertext: hex(`
    6e 2e 35 9a 25 68 f9 80 41 ba 07 28 dd 0d 69 81 e9 7e 7a ec 1d 43 60 c2 0a 27 af cc fd 9f ae 0b
    f9 1b 65 c5 52 47 33 ab 8f 59 3d ab cd 62 b3 57 16 39 d6 24 e6 51 52 ab 8f 53 0c 35 9f 08 61 d8
    07 ca 0d bf 50 0d 6a 61 56 a3 8e 08 8a 22 b6 5e 52 bc 51 4d 16 cc f8 06 81 8c e9 1a b7 79 37 36
    5a f9 0b bf 74 a3 5b e6 b4 0b 8e ed f2 78 5e 42 87 4d`),
};

/** RFC 8439 Appendix A.2, test vector #3: "'Twas brillig...", block counter 42. */
const RFC8439_A_2_3 = {
  key: hex("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0"),
  nonce: hex("000000000000000000000002"),
  counter: 42,
  plaintext: hex(`
    2754776173206272696c6c69672c20616e642074686520736c6974687920746f7665730a446964206779726520616e64
    2067696d626c6520696e2074686520776162653a0a416c6c206d696d737920776572652074686520626f726f676f7665
    732c0a416e6420746865206d6f6d65207261746873206f757467726162652e`),
  ciphertext: hex(`
    62e6347f95ed87a45ffae7426f27a1df5fb69110044c0d73118effa95b01e5cf166d3df2d721caf9b21e5fb14c616871
    fd84c54f9d65b283196c7fe4f60553ebf39c6402c42234e32a356b3e764312a61a5532055716ead6962568f87d3f3f77
    04c6a8d1bcd1bf4d50d6154b6da731b187b58dfd728afa36757a797ac188d1`),
};

/** RFC 8439 §2.5.2: Poly1305 of "Cryptographic Forum Research Group". */
const RFC8439_2_5_2 = {
  key: hex("85:d6:be:78:57:55:6d:33:7f:44:52:fe:42:d5:06:a8:01:03:80:8a:fb:0d:b2:fd:4a:bf:f6:af:41:49:f5:1b"),
  message: utf8("Cryptographic Forum Research Group"),
  tag: hex("a8:06:1d:c1:30:51:36:c6:c2:2b:8b:af:0c:01:27:a9"),
};

const z = (n: number): string => "00".repeat(n);
const ff = (n: number): string => "ff".repeat(n);

/** RFC 8439 Appendix A.3, Poly1305 test vectors #5-#11: the limb-carry and final-reduction edge cases. */
const RFC8439_A_3: { name: string; key: string; message: string; tag: string }[] = [
  { name: "#5 (h wraps past p)", key: "02" + z(31), message: ff(16), tag: "03" + z(15) },
  { name: "#6 (s overflows 2^128)", key: "02" + z(15) + ff(16), message: "02" + z(15), tag: "03" + z(15) },
  { name: "#7 (carry through all limbs)", key: "01" + z(31), message: ff(16) + "f0" + ff(15) + "11" + z(15), tag: "05" + z(15) },
  { name: "#8 (h reduces to 0)", key: "01" + z(31), message: ff(16) + "fb" + "fe".repeat(15) + "01".repeat(16), tag: z(16) },
  { name: "#9 (h = p - 1 ... )", key: "02" + z(31), message: "fd" + ff(15), tag: "fa" + ff(15) },
  {
    name: "#10 (5*H+L reduction)",
    key: "01" + z(7) + "04" + z(7) + z(16),
    message: "e33594d7505e43b9" + z(8) + "3394d7505e4379cd" + "01" + z(7) + z(16) + "01" + z(15),
    tag: "14" + z(7) + "55" + z(7),
  },
  {
    name: "#11 (5*H+L reduction, 48 bytes)",
    key: "01" + z(7) + "04" + z(7) + z(16),
    message: "e33594d7505e43b9" + z(8) + "3394d7505e4379cd" + "01" + z(7) + z(16),
    tag: "13" + z(15),
  },
];

/** RFC 8439 §2.8.2: the AEAD example. */
const RFC8439_2_8_2 = {
  key: KEY_80_9F,
  nonce: hex("07 00 00 00 40 41 42 43 44 45 46 47"),
  aad: hex("50 51 52 53 c0 c1 c2 c3 c4 c5 c6 c7"),
  plaintext: SUNSCREEN,
  ciphertext: hex(`
    d3 1a 8d 34 64 8e 60 db 7b 86 af bc 53 ef 7e c2 a4 ad ed 51 29 6e 08 fe a9 e2 b5 a7 36 ee 62 d6
    3d be a4 5e 8c a9 67 12 82 fa fb 69 da 92 72 8b 1a 71 de 0a 9e 06 0b 29 05 d6 a5 b6 7e cd 3b 36
    92 dd bd 7f 2d 77 8b 8c 98 03 ae e3 28 09 1b 58 fa b3 24 e4 fa d6 75 94 55 85 80 8b 48 31 d7 bc
    3f f4 de f0 8e 4b 7a 9d e5 76 d2 65 86 ce c6 4b 61 16`),
  tag: hex("1a:e1:0b:59:4f:09:e2:6a:7e:90:2e:cb:d0:60:06:91"),
};

/** RFC 8439 Appendix A.5: ChaCha20-Poly1305 AEAD decryption. */
const RFC8439_A_5 = {
  key: hex("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0"),
  nonce: hex("000000000102030405060708"),
  aad: hex("f33388860000000000004e91"),
  ciphertext: hex(`
    64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43eea09ee94e382d26b0
    bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855
    9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4b9166c767b804d46a59b5216cde7a4e9
    9040c5a40433225ee282a1b0a06c523eaf4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a
    0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a1049e617d91d361094fa68f0ff77987130
    305beaba2eda04df997b714d6c6f2c29a6ad5cb4022b02709b`),
  tag: hex("eead9d67890cbb22392336fea1851f38"),
  plaintext: utf8(
    "Internet-Drafts are draft documents valid for a maximum of six months and may be updated, replaced, " +
      "or obsoleted by other documents at any time. It is inappropriate to use Internet-Drafts as reference " +
      "material or to cite them other than as /\u201cwork in progress./\u201d",
  ),
};

/** draft-irtf-cfrg-xchacha-03 §2.2.1: HChaCha20 test vector. */
const XCHACHA_2_2_1 = {
  key: KEY_00_1F,
  nonce: hex("00:00:00:09:00:00:00:4a:00:00:00:00:31:41:59:27"),
  subkey: hex("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"),
};

/** draft-irtf-cfrg-xchacha-03 Appendix A.3.1: XChaCha20-Poly1305 AEAD test vector. */
const XCHACHA_A_3_1 = {
  key: KEY_80_9F,
  nonce: hex("404142434445464748494a4b4c4d4e4f5051525354555657"),
  aad: hex("50515253c0c1c2c3c4c5c6c7"),
  plaintext: SUNSCREEN,
  ciphertext: hex(`
    bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39
    ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9
    21f9664c97637da9768812f615c68b13b52e`),
  tag: hex("c0875924c1c7987947deafd8780acf49"),
};

// --- Wycheproof ----------------------------------------------------------------------------------

interface WycheproofAeadFile {
  algorithm: string;
  numberOfTests: number;
  testGroups: {
    ivSize: number;
    keySize: number;
    tagSize: number;
    tests: {
      tcId: number;
      comment: string;
      flags: string[];
      key: string;
      iv: string;
      aad: string;
      msg: string;
      ct: string;
      tag: string;
      result: "valid" | "invalid" | "acceptable";
    }[];
  }[];
}

type Aead = {
  seal(key: Uint8Array, nonce: Uint8Array, pt: Uint8Array, aad?: Uint8Array): Uint8Array;
  open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array | null;
};

/**
 * Runs every vector of a Wycheproof AEAD file and returns how many ran, by outcome.
 * valid: seals to exactly ct || tag and opens back to msg. invalid: open returns null, or (wrong
 * nonce length) both calls throw EngineError BAD_NONCE. acceptable (none in the current files):
 * the algorithm may either accept or reject; if it opens, it must give msg and seal must match.
 */
function runWycheproof(file: WycheproofAeadFile, aead: Aead, nonceSize: number): Record<string, number> {
  const tally: Record<string, number> = { valid: 0, invalid: 0, acceptable: 0 };
  for (const group of file.testGroups) {
    for (const t of group.tests) {
      const where = `Wycheproof ${file.algorithm} tcId ${t.tcId} (${t.comment || t.flags.join(",")})`;
      const key = hex(t.key);
      const iv = hex(t.iv);
      const aad = hex(t.aad);
      const msg = hex(t.msg);
      const sealed = hex(t.ct + t.tag);
      tally[t.result] = (tally[t.result] ?? 0) + 1;
      if (iv.length !== nonceSize) {
        expect(t.result, `${where}: a wrong-length nonce can only be an invalid vector`).toBe("invalid");
        expect(() => aead.seal(key, iv, msg, aad), where).toThrowError(expect.objectContaining({ code: "BAD_NONCE" }));
        expect(() => aead.open(key, iv, sealed, aad), where).toThrowError(expect.objectContaining({ code: "BAD_NONCE" }));
        continue;
      }
      const opened = aead.open(key, iv, sealed, aad);
      if (t.result === "valid") {
        expectBytes(aead.seal(key, iv, msg, aad), sealed, `${where}: seal`);
        expectBytes(opened, msg, `${where}: open`);
      } else if (t.result === "invalid") {
        expect(opened, `${where}: an invalid vector opened`).toBeNull();
      } else if (opened !== null) {
        expectBytes(opened, msg, `${where}: acceptable vector opened to the wrong plaintext`);
        expectBytes(aead.seal(key, iv, msg, aad), sealed, `${where}: seal`);
      }
    }
  }
  return tally;
}

// --- Tests ---------------------------------------------------------------------------------------

describe.each(BUILDS)("AEAD primitives (%s build)", (build) => {
  let engine: Engine;
  beforeAll(() => {
    engine = Engine.create({ build });
  });

  const chacha: Aead = {
    seal: (k, n, p, a) => engine.chacha20Poly1305Seal(k, n, p, a),
    open: (k, n, s, a) => engine.chacha20Poly1305Open(k, n, s, a),
  };
  const xchacha: Aead = {
    seal: (k, n, p, a) => engine.xchacha20Poly1305Seal(k, n, p, a),
    open: (k, n, s, a) => engine.xchacha20Poly1305Open(k, n, s, a),
  };

  describe("known answers", () => {
    it("RFC 8439 §2.4.2: ChaCha20 encryption, counter 1", () => {
      const v = RFC8439_2_4_2;
      expectBytes(engine.chacha20(v.key, v.nonce, v.plaintext, v.counter), v.ciphertext, "§2.4.2 encrypt");
      expectBytes(engine.chacha20(v.key, v.nonce, v.ciphertext, v.counter), v.plaintext, "§2.4.2 decrypt");
    });

    it("RFC 8439 Appendix A.2 #3: ChaCha20 encryption, counter 42", () => {
      const v = RFC8439_A_2_3;
      expectBytes(engine.chacha20(v.key, v.nonce, v.plaintext, v.counter), v.ciphertext, "A.2 #3");
    });

    it("RFC 8439 §2.5.2: Poly1305", () => {
      const v = RFC8439_2_5_2;
      expectBytes(engine.poly1305(v.key, v.message), v.tag, "§2.5.2");
    });

    it.each(RFC8439_A_3)("RFC 8439 Appendix A.3 Poly1305 $name", (v) => {
      expectBytes(engine.poly1305(hex(v.key), hex(v.message)), hex(v.tag), `A.3 ${v.name}`);
    });

    it("RFC 8439 §2.8.2: ChaCha20-Poly1305 seal and open", () => {
      const v = RFC8439_2_8_2;
      const sealed = engine.chacha20Poly1305Seal(v.key, v.nonce, v.plaintext, v.aad);
      expectBytes(sealed, concat(v.ciphertext, v.tag), "§2.8.2 seal");
      expectBytes(engine.chacha20Poly1305Open(v.key, v.nonce, sealed, v.aad), v.plaintext, "§2.8.2 open");
    });

    it("RFC 8439 Appendix A.5: ChaCha20-Poly1305 decryption", () => {
      const v = RFC8439_A_5;
      const sealed = concat(v.ciphertext, v.tag);
      expectBytes(engine.chacha20Poly1305Open(v.key, v.nonce, sealed, v.aad), v.plaintext, "A.5 open");
      expectBytes(engine.chacha20Poly1305Seal(v.key, v.nonce, v.plaintext, v.aad), sealed, "A.5 seal");
      expect(engine.chacha20Poly1305Open(v.key, v.nonce, sealed, v.aad.subarray(1)), "A.5 with shortened AAD").toBeNull();
    });

    it("draft-irtf-cfrg-xchacha-03 §2.2.1: HChaCha20", () => {
      const v = XCHACHA_2_2_1;
      expectBytes(engine.hchacha20(v.key, v.nonce), v.subkey, "§2.2.1");
    });

    it("draft-irtf-cfrg-xchacha-03 Appendix A.3.1: XChaCha20-Poly1305 seal and open", () => {
      const v = XCHACHA_A_3_1;
      const sealed = engine.xchacha20Poly1305Seal(v.key, v.nonce, v.plaintext, v.aad);
      expectBytes(sealed, concat(v.ciphertext, v.tag), "A.3.1 seal");
      expectBytes(engine.xchacha20Poly1305Open(v.key, v.nonce, sealed, v.aad), v.plaintext, "A.3.1 open");
    });
  });

  describe("Wycheproof", () => {
    it("every vector of chacha20_poly1305_test.json", (ctx) => {
      const file = loadVectors<WycheproofAeadFile>(ctx, "wycheproof/chacha20_poly1305_test.json");
      const tally = runWycheproof(file, chacha, 12);
      expect(tally.valid! + tally.invalid! + tally.acceptable!, "vectors run vs numberOfTests").toBe(file.numberOfTests);
      expect(tally.invalid, "the file has invalid vectors to reject").toBeGreaterThan(0);
    });

    it("every vector of xchacha20_poly1305_test.json", (ctx) => {
      const file = loadVectors<WycheproofAeadFile>(ctx, "wycheproof/xchacha20_poly1305_test.json");
      const tally = runWycheproof(file, xchacha, 24);
      expect(tally.valid! + tally.invalid! + tally.acceptable!, "vectors run vs numberOfTests").toBe(file.numberOfTests);
      expect(tally.invalid, "the file has invalid vectors to reject").toBeGreaterThan(0);
    });
  });

  describe("differential (seeded)", () => {
    it("ChaCha20-Poly1305 seal and open agree with node:crypto and @noble/ciphers", () => {
      const r = rng(`aead/chacha20poly1305/${build}`);
      for (const size of sizes(r, 40)) {
        const key = r.bytes(32);
        const nonce = r.bytes(12);
        const aad = r.bytes(aadLength(r));
        const plaintext = r.bytes(size);
        const where = r.where(`size=${size} aad=${aad.length}`);

        const ours = engine.chacha20Poly1305Seal(key, nonce, plaintext, aad);
        const openssl = nodeSeal(key, nonce, plaintext, aad);
        const noble = chacha20poly1305(key, nonce, aad).encrypt(plaintext);
        expectBytes(ours, openssl, `${where} seal vs node:crypto`);
        expectBytes(ours, noble, `${where} seal vs noble`);

        expectBytes(engine.chacha20Poly1305Open(key, nonce, openssl, aad), plaintext, `${where} open of node:crypto's output`);
        expectBytes(nodeOpen(key, nonce, ours, aad), plaintext, `${where} node:crypto opens ours`);

        const bit = r.int(0, ours.length * 8 - 1);
        expect(engine.chacha20Poly1305Open(key, nonce, flipBit(ours, bit), aad), `${where} bit ${bit} flipped`).toBeNull();
        const otherAad = aad.length > 0 ? flipBit(aad, r.int(0, aad.length * 8 - 1)) : new Uint8Array([0]);
        expect(engine.chacha20Poly1305Open(key, nonce, ours, otherAad), `${where} wrong AAD`).toBeNull();
        expect(engine.chacha20Poly1305Open(key, flipBit(nonce, r.int(0, 95)), ours, aad), `${where} wrong nonce`).toBeNull();
      }
    });

    it("large AAD (up to 128 KiB) with short and long messages agrees with node:crypto", () => {
      const r = rng(`aead/large-aad/${build}`);
      for (const [aadLen, size] of [[65535, 0], [65536, 1], [131072, 1000], [r.int(1, 100_000), r.int(0, 65535)]] as const) {
        const key = r.bytes(32);
        const nonce = r.bytes(12);
        const aad = r.bytes(aadLen);
        const plaintext = r.bytes(size);
        const where = r.where(`size=${size} aad=${aadLen}`);
        const ours = engine.chacha20Poly1305Seal(key, nonce, plaintext, aad);
        expectBytes(ours, nodeSeal(key, nonce, plaintext, aad), `${where} seal`);
        expectBytes(engine.chacha20Poly1305Open(key, nonce, ours, aad), plaintext, `${where} open`);
        expect(engine.chacha20Poly1305Open(key, nonce, ours, flipBit(aad, r.int(0, aadLen * 8 - 1))), `${where} AAD bit flipped`).toBeNull();
      }
    });

    it("unaligned input views give the same result", () => {
      const r = rng(`aead/unaligned/${build}`);
      for (const size of [0, 1, 17, 200, 1000]) {
        const backing = r.bytes(size + 200);
        const key = backing.subarray(1, 33);
        const nonce = backing.subarray(35, 47);
        const aad = backing.subarray(49, 49 + 13);
        const plaintext = backing.subarray(63 + 128, 63 + 128 + size);
        const expected = chacha20poly1305(key.slice(), nonce.slice(), aad.slice()).encrypt(plaintext.slice());
        expectBytes(engine.chacha20Poly1305Seal(key, nonce, plaintext, aad), expected, r.where(`size=${size}`));
      }
    });

    it("XChaCha20-Poly1305 seal and open agree with @noble/ciphers", () => {
      const r = rng(`aead/xchacha20poly1305/${build}`);
      for (const size of sizes(r, 20)) {
        const key = r.bytes(32);
        const nonce = r.bytes(24);
        const aad = r.bytes(aadLength(r));
        const plaintext = r.bytes(size);
        const where = r.where(`size=${size} aad=${aad.length}`);
        const ours = engine.xchacha20Poly1305Seal(key, nonce, plaintext, aad);
        const noble = xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
        expectBytes(ours, noble, `${where} seal vs noble`);
        expectBytes(engine.xchacha20Poly1305Open(key, nonce, noble, aad), plaintext, `${where} open of noble's output`);
        const bit = r.int(0, ours.length * 8 - 1);
        expect(engine.xchacha20Poly1305Open(key, nonce, flipBit(ours, bit), aad), `${where} bit ${bit} flipped`).toBeNull();
        // Both halves of the extended nonce matter: the first 16 bytes feed HChaCha20, the last 8 the AEAD.
        for (const byte of [0, 15, 16, 23]) {
          expect(engine.xchacha20Poly1305Open(key, flipBit(nonce, byte * 8), ours, aad), `${where} nonce byte ${byte}`).toBeNull();
        }
      }
    });

    it("HChaCha20 agrees with @noble/ciphers", () => {
      const r = rng(`aead/hchacha20/${build}`);
      for (let i = 0; i < 64; i++) {
        const key = r.bytes(32);
        const nonce = r.bytes(16);
        expectBytes(engine.hchacha20(key, nonce), nobleHchacha20(key, nonce), r.where(`case ${i}`));
      }
    });

    it("Poly1305 agrees with @noble/ciphers, including all-ones keys and messages", () => {
      const r = rng(`aead/poly1305/${build}`);
      const keys = (): Uint8Array[] => [r.bytes(32), new Uint8Array(32).fill(0xff), concat(new Uint8Array(16).fill(0xff), new Uint8Array(16))];
      for (const size of sizes(r, 40)) {
        for (const key of keys()) {
          for (const message of [r.bytes(size), new Uint8Array(size).fill(0xff)]) {
            const where = r.where(`size=${size} key=${toHex(key.subarray(0, 4))}… msg=${toHex(message.subarray(0, 2))}…`);
            expectBytes(engine.poly1305(key, message), noblePoly1305(message, key), where);
          }
        }
      }
    });

    it("raw ChaCha20 agrees with @noble/ciphers and node:crypto at random counters", () => {
      const r = rng(`aead/chacha20/${build}`);
      for (const size of sizes(r, 30)) {
        const blocks = Math.ceil(size / 64);
        // noble refuses to touch block 2^32 - 1; stay below it so no counter wraps.
        const counter = r.bool(0.2) ? r.int(0, 8) : r.int(0, 0xfffffffe - blocks);
        const key = r.bytes(32);
        const nonce = r.bytes(12);
        const data = r.bytes(size);
        const where = r.where(`size=${size} counter=${counter}`);
        const ours = engine.chacha20(key, nonce, data, counter);
        expectBytes(ours, nobleChacha20(key, nonce, data, undefined, counter), `${where} vs noble`);
        expectBytes(ours, nodeChacha20(key, nonce, data, counter), `${where} vs node:crypto`);
      }
    });

    it("raw ChaCha20 at the last block counter, 2^32 - 1", () => {
      const r = rng(`aead/chacha20-last-block/${build}`);
      for (const size of [1, 63, 64]) {
        const key = r.bytes(32);
        const nonce = r.bytes(12);
        const data = r.bytes(size);
        expectBytes(engine.chacha20(key, nonce, data, 0xffffffff), nodeChacha20(key, nonce, data, 0xffffffff), r.where(`size=${size}`));
      }
    });
  });

  it("open throws EngineError, not a crash, for a sealed text shorter than a tag", () => {
    const key = new Uint8Array(32);
    const nonce = new Uint8Array(12);
    for (const length of [0, 1, 15]) {
      expect(() => engine.chacha20Poly1305Open(key, nonce, new Uint8Array(length))).toThrowError(EngineError);
      expect(() => engine.xchacha20Poly1305Open(key, new Uint8Array(24), new Uint8Array(length))).toThrowError(
        expect.objectContaining({ code: "BAD_LENGTH" }),
      );
    }
    // An empty message with its tag is exactly 16 bytes and must open.
    const sealed = engine.chacha20Poly1305Seal(key, nonce, new Uint8Array(0));
    expect(sealed.length).toBe(16);
    expectBytes(engine.chacha20Poly1305Open(key, nonce, sealed), new Uint8Array(0), "empty message");
  });
});
