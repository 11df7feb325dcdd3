// DNS names: text ↔ labels (escapes, limits) over seeded random labels, and the wire reader's
// pointer rules on crafted chains.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import { NAME_POINTERS_MAX } from "./constants.js";
import { formatName, MessageWriter, nameKey, parseName, readName } from "./name.js";

beforeEach(reportSeedOnFailure);

describe("text form", () => {
  it.each([
    ["example.com", ["example", "com"]],
    ["example.com.", ["example", "com"]],
    [".", []],
    ["a\\.b.c", ["a.b", "c"]],
    ["a\\\\b", ["a\\b"]],
    ["\\000\\255x", ["\u0000\u00ffx"]],
    ["sp\\032ace", ["sp ace"]],
    ["\u00fc", ["\u00fc"]], // a character below 256 is that octet
  ])("%s", (text, labels) => {
    expect(parseName(text)).toEqual(labels);
  });

  it.each(["", "..", "a..b", ".a", "a\\", "\\256", "\u20ac.example", "a".repeat(64), `${"a".repeat(63)}.`.repeat(4)])("refuses %j", (text) => {
    expect(parseName(text)).toBeUndefined();
  });

  it("formats what parses back to the same labels, for any octets", () => {
    const r = rng("dns name text round trip");
    for (let i = 0; i < 2000; i++) {
      const labels = Array.from({ length: r.int(0, 4) }, () => String.fromCharCode(...r.bytes(r.int(1, 20))));
      const text = formatName(labels);
      expect(parseName(text), r.where(text)).toEqual(labels);
      expect(/^[\x21-\x7e]+$/.test(text), r.where(text)).toBe(true);
    }
  });

  it("keys names by ASCII case only", () => {
    expect(nameKey(["WwW", "Example", "COM"])).toBe("www.example.com");
    expect(nameKey(["\u00c4"])).toBe("\\196"); // Ä as an octet is not a letter to DNS
  });
});

describe("wire form", () => {
  it("follows a chain of 127 pointers to a name of 127 labels", () => {
    // Offset 0: "a" and the root; then each name is "a" and a pointer to the one before.
    const bytes = [1, 0x61, 0];
    let previous = 0;
    for (let i = 1; i < 127; i++) {
      const at = bytes.length;
      bytes.push(1, 0x61, 0xc0 | (previous >> 8), previous & 0xff);
      previous = at;
    }
    bytes.push(0xc0 | (previous >> 8), previous & 0xff);
    const read = readName(Uint8Array.from(bytes), bytes.length - 2);
    expect(read).toEqual({ ok: true, labels: new Array<string>(127).fill("a"), next: bytes.length });
  });

  it("refuses a chain of pointers longer than NAME_POINTERS_MAX", () => {
    // Offset 0: the root; then pointers, each to the one before it (the first to the root).
    const bytes = [0];
    for (let i = 0; i <= NAME_POINTERS_MAX; i++) {
      const target = i === 0 ? 0 : bytes.length - 2;
      bytes.push(0xc0 | (target >> 8), target & 0xff);
    }
    expect(readName(Uint8Array.from(bytes), bytes.length - 2)).toEqual({ ok: false, error: "bad_pointer" });
    expect(readName(Uint8Array.from(bytes), bytes.length - 4)).toEqual({ ok: true, labels: [], next: bytes.length - 2 });
  });

  it("compresses a repeated suffix and keeps the case of each name", () => {
    const w = new MessageWriter();
    w.name(["www", "Example", "com"]);
    w.name(["mail", "Example", "com"]);
    w.name(["mail", "example", "com"]);
    const bytes = w.finish();
    // 17 for the first; "mail" and a pointer; the third differs in case, so only "com" is shared.
    expect(bytes.length).toBe(17 + 7 + 15);
    const first = readName(bytes, 0);
    const second = readName(bytes, 17);
    expect(first).toMatchObject({ ok: true, labels: ["www", "Example", "com"] });
    expect(second).toMatchObject({ ok: true, labels: ["mail", "Example", "com"], next: 24 });
    expect(readName(bytes, 24)).toMatchObject({ ok: true, labels: ["mail", "example", "com"] });
  });
});
