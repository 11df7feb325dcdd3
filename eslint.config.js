// Lint for Wardline: typescript-eslint's recommended rules, plus the layer rules of DESIGN.md
// ("Layers") written as core no-restricted-* rules scoped by folder.
//
// The layers, foundation first; data flows one way, so a layer imports only from layers before it:
//
//   engine/            AssemblyScript, compiled to WebAssembly: not linted (its i32, usize, v128 and
//                      decorators are not TypeScript as typescript-eslint reads it)
//   daemons/engine/    the only TypeScript that touches WebAssembly
//   daemons/native/    the N-API addon's TypeScript face (TUN, batched UDP)
//   daemons/proto/     sans-IO state machines: no node:*, timers, clock, randomness or sockets
//   daemons/io/        drivers
//   daemons/<role>/    client, gateway, relay: wiring only
//   server/            imports nothing from daemons/ but the wire schema, daemons/proto/portal/
//
// bin/, bench/ and test/ sit on top and may import any layer.
//
// Flat config gives each rule the options of the last config object that matches a file; options
// never merge. So the functions below build each of these rules whole for each kind of file; no later
// object patches an earlier one.
//
// Relative imports are checked by where they land: a file's depth under its layer decides how many
// "../" reach daemons/ or the repository root, so `../io/udp.js` from daemons/proto/x.ts is caught,
// while daemons/proto/a/b.ts importing `../client/state.js` (proto's own client/ folder) is not.

import { builtinModules } from "node:module";
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

const SOURCE = "{ts,mts,cts,js,mjs,cjs}";
const TESTS = ["**/*.test.*", "test/**"];
// Extensionless JavaScript entry points, linted like the rest.
const SCRIPTS = ["bin/wardline"];

// The folders under daemons/, foundation first. `forbidden` lists the daemons/ folders a layer may
// not import; every one of them may not import server/ either.
const ROLES = ["client", "gateway", "relay"];
const DAEMON_LAYERS = {
  engine: { forbidden: ["native", "proto", "io", ...ROLES] },
  native: { forbidden: ["proto", "io", ...ROLES] },
  // proto does not import daemons/engine (nor native), although engine comes before it: DESIGN.md
  // calls proto "pure TypeScript" and daemons/engine "the only TypeScript that touches WebAssembly".
  // The drivers in daemons/io move packets between sockets, TUN and the engine per batch; a state
  // machine only tells them what to install (keys, routes, channel bindings) through pollEvent(), and
  // its tests run in virtual time without building or loading the WebAssembly module.
  proto: { forbidden: ["engine", "native", "io", ...ROLES] },
  io: { forbidden: ROLES },
  client: { forbidden: [] },
  gateway: { forbidden: [] },
  relay: { forbidden: [] },
};
const SERVER_ALLOWED = "proto/portal"; // under daemons/

// Depths with a precise pattern; deeper files fall back to "any number of ../".
const MAX_DEPTH = 8;

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
/** `n` times "../" as a regex; `null` means any number, at least one. */
const up = (n) => (n === null ? "(?:\\.\\./)+" : `(?:\\.\\./){${n}}`);
/** The files named `name` of `dir` at `depth` folders below it (0: directly in it); `null`: at any depth. */
const filesAt = (dir, depth, name = "*") =>
  `${dir}/${depth === null ? "**/" : "*/".repeat(depth)}${name}.${SOURCE}`;

// Everything but daemons/engine: no WebAssembly global, no .wasm file, nothing from engine/build.
const WASM_IMPORTS = [
  {
    regex: "\\.wasm$|(?:^|/)engine/build(?:/|$)",
    message: "Only daemons/engine loads WebAssembly; use its typed API (DESIGN.md, Layers).",
  },
];
const WASM_GLOBALS = [
  { name: "WebAssembly", message: "Only daemons/engine touches WebAssembly; use its typed API (DESIGN.md, Layers)." },
];
const WASM_PROPERTIES = [
  { object: "globalThis", property: "WebAssembly", message: WASM_GLOBALS[0].message },
];

// Sans-IO (STYLE.md 1): a state machine never reads a clock, a socket or a random source; time and
// randomness come in as arguments. This holds for proto's sources, not its tests (*.test.ts), which
// may use node:* helpers and real timers around the machines they drive.
const SANS_IO_MESSAGE = "daemons/proto is sans-IO: pass time and randomness in, drain outputs with poll*() (STYLE.md 1).";
const NODE_IMPORTS = {
  paths: builtinModules.filter((name) => !name.startsWith("_")).map((name) => ({ name, message: SANS_IO_MESSAGE })),
  patterns: [
    { regex: "^node:", message: SANS_IO_MESSAGE },
    { regex: "^@noble/", importNames: ["randomBytes"], message: SANS_IO_MESSAGE },
  ],
};
const SANS_IO_GLOBALS = [
  "setTimeout", "setInterval", "setImmediate", "clearTimeout", "clearInterval", "clearImmediate",
  "queueMicrotask", "performance", "process", "crypto", "fetch", "WebSocket",
].map((name) => ({ name, message: SANS_IO_MESSAGE }));
const SANS_IO_PROPERTIES = [
  { object: "Date", property: "now" },
  { object: "Math", property: "random" },
  { object: "performance", property: "now" },
  { object: "process", property: "hrtime" },
  { object: "crypto", property: "getRandomValues" },
  { object: "crypto", property: "randomUUID" },
  { object: "crypto", property: "randomBytes" },
  { object: "crypto", property: "randomInt" },
  { object: "crypto", property: "randomFillSync" },
  // @noble/curves' key generators read a random source when called without a seed.
  { property: "randomSecretKey" },
  { property: "randomPrivateKey" },
  ...SANS_IO_GLOBALS.map(({ name }) => ({ object: "globalThis", property: name })),
].map((restriction) => ({ ...restriction, message: SANS_IO_MESSAGE }));
const SANS_IO_SYNTAX = [
  { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: `new Date() reads the clock. ${SANS_IO_MESSAGE}` },
  { selector: "CallExpression[callee.name='Date']", message: `Date() reads the clock. ${SANS_IO_MESSAGE}` },
  { selector: "ImportExpression", message: `A state machine loads nothing at run time. ${SANS_IO_MESSAGE}` },
];

/** Import patterns for daemons/<layer> at `depth`: nothing from later layers or server/. */
function daemonLayerPatterns(layer, depth) {
  const toDaemons = depth === null ? null : depth + 1;
  const toRoot = depth === null ? null : depth + 2;
  const patterns = DAEMON_LAYERS[layer].forbidden.map((other) => ({
    regex: `^${up(toDaemons)}${other}(?:/|$)|(?:^|/)daemons/${other}(?:/|$)`,
    message: `daemons/${layer} may not import daemons/${other}: data flows one way (DESIGN.md, Layers).`,
  }));
  patterns.push({
    regex: `^${up(toRoot)}server(?:/|$)`,
    message: `daemons/${layer} may not import server/: the portal and the daemons share only daemons/proto/portal.`,
  });
  return patterns;
}

// server/ names daemons/ outright from any depth ("../../daemons/proto/portal/schema.js"), so one
// pattern serves every file: no daemons/ path but the wire schema.
const SERVER_IMPORTS = [
  {
    regex: `(?:^|/)daemons(?:$|/(?!${escape(SERVER_ALLOWED)}(?:/|$)))`,
    message: "server/ imports nothing from daemons/ but the wire schema in daemons/proto/portal (DESIGN.md, Layers).",
  },
];

/** One config object that sets all of no-restricted-imports for `files`. */
function imports(files, { patterns = [], paths = [] } = {}) {
  return {
    name: `wardline/imports ${files.join(" ")}`,
    files,
    rules: { "no-restricted-imports": ["error", { paths, patterns }] },
  };
}

/** The no-restricted-imports objects of one layer folder, the generic one first, then per depth. */
function layerImports(dir, patternsAt, { wasm = true, sansIo = false } = {}) {
  const configs = [];
  for (const depth of [null, ...Array.from({ length: MAX_DEPTH }, (_, i) => i)]) {
    const files = [filesAt(dir, depth)];
    const layer = [...(wasm ? WASM_IMPORTS : []), ...patternsAt(depth)];
    if (sansIo) {
      configs.push(imports(files, { patterns: [...layer, ...NODE_IMPORTS.patterns], paths: NODE_IMPORTS.paths }));
      configs.push(imports([filesAt(dir, depth, "*.test")], { patterns: layer }));
    } else {
      configs.push(imports(files, { patterns: layer }));
    }
  }
  return configs;
}

export default defineConfig(
  {
    name: "wardline/ignores",
    ignores: ["dist/", "node_modules/", "engine/", "engine/build/", "coverage/"],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    name: "wardline/base",
    files: [`**/*.${SOURCE}`, ...SCRIPTS],
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Structured logs, not console (STYLE.md 13); bin/, bench/ and tests print to the terminal.
      "no-console": "error",
      "no-restricted-imports": ["error", { patterns: WASM_IMPORTS }],
      "no-restricted-globals": ["error", ...WASM_GLOBALS],
      "no-restricted-properties": ["error", ...WASM_PROPERTIES],
    },
  },
  {
    name: "wardline/terminal",
    files: ["bin/**", "bench/**", ...TESTS],
    rules: { "no-console": "off" },
  },
  {
    // Node's globals for plain JavaScript (this file, scripts); TypeScript files get them from @types/node.
    name: "wardline/javascript",
    files: ["**/*.{js,mjs,cjs}", ...SCRIPTS],
    languageOptions: {
      globals: { process: "readonly", console: "readonly", URL: "readonly", Buffer: "readonly", WebAssembly: "readonly" },
    },
  },

  // daemons/engine: the one place WebAssembly is allowed.
  {
    name: "wardline/daemons-engine",
    files: [`daemons/engine/**/*.${SOURCE}`],
    rules: { "no-restricted-globals": "off", "no-restricted-properties": "off" },
  },
  ...layerImports("daemons/engine", (depth) => daemonLayerPatterns("engine", depth), { wasm: false }),

  ...["native", "io", ...ROLES].flatMap((layer) =>
    layerImports(`daemons/${layer}`, (depth) => daemonLayerPatterns(layer, depth)),
  ),

  // daemons/proto: layer imports everywhere, sans-IO for the sources.
  ...layerImports("daemons/proto", (depth) => daemonLayerPatterns("proto", depth), { sansIo: true }),
  {
    name: "wardline/daemons-proto sans-IO",
    files: [`daemons/proto/**/*.${SOURCE}`],
    ignores: TESTS,
    rules: {
      "no-restricted-globals": ["error", ...WASM_GLOBALS, ...SANS_IO_GLOBALS],
      "no-restricted-properties": ["error", ...WASM_PROPERTIES, ...SANS_IO_PROPERTIES],
      "no-restricted-syntax": ["error", ...SANS_IO_SYNTAX],
    },
  },

  imports([`server/**/*.${SOURCE}`], { patterns: [...WASM_IMPORTS, ...SERVER_IMPORTS] }),

  // server/web: the admin UI, plain modules the browser runs as served (no bundler): browser globals.
  {
    name: "wardline/server-web browser",
    files: ["server/web/**/*.js"],
    languageOptions: {
      sourceType: "module",
      globals: Object.fromEntries(
        ["window", "document", "location", "history", "navigator", "fetch", "FormData", "Node", "Element", "CSS", "getSelection", "console", "setTimeout", "clearTimeout", "EventSource", "URL", "URLSearchParams", "Intl", "performance"].map((name) => [name, "readonly"]),
      ),
    },
  },
);
