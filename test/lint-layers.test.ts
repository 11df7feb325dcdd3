// Proves each layer rule of eslint.config.js fires where DESIGN.md ("Layers") forbids something, and
// stays quiet where it allows it. Snippets are linted under virtual paths (the files need not exist):
// the path alone decides which rules apply.

import { fileURLToPath } from "node:url";
import { ESLint, type Linter } from "eslint";
import { beforeAll, describe, expect, it } from "vitest";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const eslint = new ESLint({ cwd: repoRoot });

async function lint(filePath: string, code: string): Promise<Linter.LintMessage[]> {
  const [result] = await eslint.lintText(code, { filePath });
  if (result === undefined) throw new Error(`no lint result for ${filePath}`);
  return result.messages;
}

/** The rule ids of the errors in `code` linted as `filePath`, sorted and without repeats. */
async function errors(filePath: string, code: string): Promise<string[]> {
  const messages = await lint(filePath, code);
  return [...new Set(messages.filter((m) => m.severity === 2).map((m) => m.ruleId ?? `fatal: ${m.message}`))].sort();
}

/** A module that imports `source` and uses the binding, so only the import itself can be at fault. */
const importing = (source: string): string => `import { thing } from "${source}";\nexport const used = thing;\n`;

beforeAll(async () => {
  // The first lint loads the config and the TypeScript parser.
  await lint("daemons/proto/warmup.ts", "export {};\n");
}, 30_000);

describe("daemons/proto is sans-IO", () => {
  const file = "daemons/proto/wireguard/peer.ts";

  it.each(["node:fs", "node:dgram", "node:crypto", "node:timers/promises", "fs", "fs/promises", "dgram", "crypto", "net"])(
    "rejects importing %s",
    async (source) => {
      expect(await errors(file, importing(source))).toEqual(["no-restricted-imports"]);
    },
  );

  it("rejects @noble's random source", async () => {
    const code = 'import { randomBytes } from "@noble/hashes/utils.js";\nexport const key = randomBytes(32);\n';
    expect(await errors(file, code)).toEqual(["no-restricted-imports"]);
  });

  it.each([
    ["setTimeout(() => {}, 1);", "no-restricted-globals"],
    ["setInterval(() => {}, 1);", "no-restricted-globals"],
    ["setImmediate(() => {});", "no-restricted-globals"],
    ["queueMicrotask(() => {});", "no-restricted-globals"],
    ["globalThis.setTimeout(() => {}, 1);", "no-restricted-properties"],
    ["export const t = Date.now();", "no-restricted-properties"],
    ["export const t = new Date();", "no-restricted-syntax"],
    ["export const t = Date();", "no-restricted-syntax"],
    ["export const t = Math.random();", "no-restricted-properties"],
    ["export const t = await import('./later.js');", "no-restricted-syntax"],
    ["export const t = fetch;", "no-restricted-globals"],
  ])("rejects %s", async (code, ruleId) => {
    expect(await errors(file, code)).toEqual([ruleId]);
  });

  it.each([
    "export const t = performance.now();",
    "export const t = process.hrtime.bigint();",
    "export const t = crypto.getRandomValues(new Uint8Array(32));",
    "export const t = crypto.randomUUID();",
  ])("rejects %s (the global and its property)", async (code) => {
    expect(await errors(file, code)).toEqual(["no-restricted-globals", "no-restricted-properties"]);
  });

  it("allows time and randomness passed in, and dates built from them", async () => {
    const code = [
      'import { chacha20poly1305 } from "@noble/ciphers/chacha.js";',
      'import { MESSAGE_TRANSPORT_OFFSET_COUNTER } from "../constants.js";',
      'import type { Frame } from "../portal/schema.js";',
      "export function expiry(now: number, random: Uint8Array, frame: Frame): Date {",
      "  void chacha20poly1305;",
      "  return new Date(now + random[0]! + MESSAGE_TRANSPORT_OFFSET_COUNTER + frame.ref);",
      "}",
      "",
    ].join("\n");
    expect(await lint(file, code)).toEqual([]);
  });

  it("lets its tests use node:* and real time", async () => {
    const code = 'import { readFileSync } from "node:fs";\nexport const t = [readFileSync, Date.now(), setTimeout];\n';
    expect(await lint("daemons/proto/wireguard/peer.test.ts", code)).toEqual([]);
  });

  it("keeps the layer rules in its tests", async () => {
    expect(await errors("daemons/proto/wireguard/peer.test.ts", importing("../../io/udp.js"))).toEqual(["no-restricted-imports"]);
  });
});

describe("only daemons/engine touches WebAssembly", () => {
  const elsewhere = [
    "daemons/proto/x.ts",
    "daemons/io/udp.ts",
    "daemons/client/main.ts",
    "server/src/app.ts",
    "bin/cli.ts",
    "bin/wardline",
    "bench/engine.ts",
    "test/support/x.ts",
    "daemons/proto/x.test.ts",
  ];

  it.each(elsewhere)("rejects the WebAssembly global in %s", async (file) => {
    expect(await errors(file, "export const m = WebAssembly.Module;\n")).toEqual(["no-restricted-globals"]);
    expect(await errors(file, "export const m = globalThis.WebAssembly;\n")).toEqual(["no-restricted-properties"]);
  });

  it.each(elsewhere)("rejects importing .wasm or engine/build in %s", async (file) => {
    expect(await errors(file, importing("../../engine/build/release.wasm"))).toEqual(["no-restricted-imports"]);
    expect(await errors(file, importing("../../engine/build/bindings.js"))).toEqual(["no-restricted-imports"]);
  });

  it("allows daemons/engine and its tests to", async () => {
    const code = "export const m = (bytes: Uint8Array) => new WebAssembly.Instance(new WebAssembly.Module(bytes));\n";
    expect(await lint("daemons/engine/engine.ts", code)).toEqual([]);
    expect(await lint("daemons/engine/aead.test.ts", "export const m = globalThis.WebAssembly;\n")).toEqual([]);
    expect(await lint("daemons/engine/engine.ts", importing("../../engine/build/release.wasm"))).toEqual([]);
  });
});

describe("server/ imports nothing from daemons/ but the wire schema", () => {
  it.each([
    ["server/src/app.ts", "../../daemons/proto/portal/schema.js"],
    ["server/src/realtime/gateway.ts", "../../../daemons/proto/portal/index.js"],
    ["server/main.ts", "../daemons/proto/portal"],
  ])("allows %s to import %s", async (file, source) => {
    expect(await lint(file, importing(source))).toEqual([]);
  });

  it.each([
    ["server/src/app.ts", "../../daemons/proto/noise/handshake.js"],
    ["server/src/app.ts", "../../daemons/proto/portalish/x.js"],
    ["server/src/app.ts", "../../daemons/io/udp.js"],
    ["server/src/app.ts", "../../daemons/engine/index.js"],
    ["server/src/app.ts", "../../daemons"],
    ["server/src/realtime/gateway.ts", "../../../daemons/gateway/main.js"],
    ["server/main.ts", "../daemons/relay/main.js"],
  ])("rejects %s importing %s", async (file, source) => {
    expect(await errors(file, importing(source))).toEqual(["no-restricted-imports"]);
  });
});

describe("nothing below imports anything above it", () => {
  it.each([
    ["daemons/engine/engine.ts", "../proto/wireguard/peer.js"],
    ["daemons/engine/engine.ts", "../native/udp.js"],
    ["daemons/engine/engine.ts", "../io/udp.js"],
    ["daemons/engine/engine.ts", "../client/main.js"],
    ["daemons/engine/engine.ts", "../../server/src/app.js"],
    ["daemons/engine/sub/table.ts", "../../io/udp.js"],
    ["daemons/engine/a/b/c/d/e/f/g/h/i/deep.ts", "../../../../../../../../../../io/udp.js"],
    ["daemons/native/index.ts", "../proto/x.js"],
    ["daemons/proto/x.ts", "../engine/index.js"],
    ["daemons/proto/x.ts", "../native/index.js"],
    ["daemons/proto/x.ts", "../io/udp.js"],
    ["daemons/proto/x.ts", "../gateway/main.js"],
    ["daemons/proto/x.ts", "../../server/src/app.js"],
    ["daemons/proto/portal/schema.ts", "../../relay/main.js"],
    ["daemons/proto/portal/schema.ts", "../../../daemons/io/socket.js"],
    ["daemons/io/udp.ts", "../client/main.js"],
    ["daemons/io/udp.ts", "../relay/main.js"],
    ["daemons/io/udp.ts", "../../server/src/app.js"],
    ["daemons/io/sockets/portal.ts", "../../../server/src/realtime/gateway.js"],
    ["daemons/client/main.ts", "../../server/src/app.js"],
    ["daemons/relay/main.ts", "../../server/src/app.js"],
  ])("rejects %s importing %s", async (file, source) => {
    expect(await errors(file, importing(source))).toEqual(["no-restricted-imports"]);
  });

  it.each([
    ["daemons/engine/engine.ts", "./transport.js"],
    ["daemons/native/index.ts", "../engine/index.js"],
    ["daemons/proto/wireguard/peer.ts", "../portal/schema.js"],
    // proto's own client/ and relay/ folders are not the roles of the same name.
    ["daemons/proto/wireguard/peer.ts", "../client/state.js"],
    ["daemons/proto/turn/server.ts", "../relay/allocation.js"],
    ["daemons/io/udp.ts", "../engine/index.js"],
    ["daemons/io/udp.ts", "../native/index.js"],
    ["daemons/io/udp.ts", "../proto/wireguard/peer.js"],
    ["daemons/io/loop/budget.ts", "../../proto/x.js"],
    ["daemons/client/main.ts", "../io/udp.js"],
    ["daemons/gateway/main.ts", "../proto/gateway/state.js"],
    ["bin/wardline.ts", "../server/src/app.js"],
    ["bin/wardline.ts", "../daemons/client/main.js"],
    ["bench/engine.ts", "../daemons/engine/index.js"],
  ])("allows %s to import %s", async (file, source) => {
    expect(await lint(file, importing(source))).toEqual([]);
  });
});

describe("the rest of the config", () => {
  it("keeps console out of the daemons and the server, and lets bin/, bench/ and tests print", async () => {
    const code = 'console.log("hello");\n';
    expect(await errors("daemons/io/udp.ts", code)).toEqual(["no-console"]);
    expect(await errors("server/src/app.ts", code)).toEqual(["no-console"]);
    expect(await lint("bin/wardline.ts", code)).toEqual([]);
    expect(await lint("bench/engine.ts", code)).toEqual([]);
    expect(await lint("daemons/engine/aead.test.ts", code)).toEqual([]);
  });

  it("ignores the AssemblyScript sources and build output", async () => {
    for (const path of ["engine/index.ts", "engine/build/release.wasm", "dist/daemons/engine/index.js", "coverage/index.html"]) {
      expect(await eslint.isPathIgnored(path), path).toBe(true);
    }
    expect(await eslint.isPathIgnored("daemons/engine/engine.ts")).toBe(false);
  });
});
