// `wardline relay`: its help, every way its command line or environment can be wrong (each refused
// with exit 2 and a message naming the option, before anything is bound), where each option comes
// from (flag, then environment variable, then default), the run-time failures (exit 1), the
// Prometheus text of relayMetrics, and the relay registered with a real portal (PGlite), run in
// process: it joins, a client is handed it with credentials that a real TURN Allocate on it
// accepts, and it exits 1 when its token is refused. The standalone relay's data path is tested end
// to end in test/interop/coturn.test.ts and test/interop/turn-client.test.ts.

import { randomBytes, randomUUID } from "node:crypto";
import { createSocket } from "node:dgram";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PortalSocket, type PortalSocketEvent } from "../daemons/io/portal-socket.js";
import { Relay, type RelayCounters } from "../daemons/io/relay.js";
import { parsePortalToken, TOKEN_PREFIXES, type PortalTokenKind } from "../daemons/proto/portal/token.js";
import { TurnAllocation, type TurnClientEvent } from "../daemons/proto/turn/client.js";
import type { TurnServerStats } from "../daemons/proto/turn/server.js";
import { issueToken } from "../server/src/accounts/accounts.service.js";
import { issueSecret, parseToken } from "../server/src/auth/secrets.js";
import { DATABASES, startTestPortal, type TestPortal } from "../server/src/testing/api.js";
import type { RelayView } from "../server/src/tokens/relays.controller.js";
import { randomPublicKey } from "../server/src/testing/device.js";
import { captureIo, type CapturedIo } from "../test/support/cli.js";
import { main } from "./cli.js";
import { RELAY_HELP, relayCommand, relayConfig, relayMetrics, type RelayConfig } from "./relay.js";

type Flags = Record<string, string>;

/** A command line that relayConfig accepts and that binds nothing public. */
const GOOD: Flags = { secret: "s3cret", listen4: "127.0.0.1", listen6: "off", http: "off" };

const argvOf = (flags: Flags): string[] => Object.entries(flags).flatMap(([name, value]) => [`--${name}`, value]);

const OPTIONS = ["secret", "portal-url", "token", "token-file", "realm", "port", "listen4", "listen6", "public-ip4", "public-ip6", "ports", "allow-private-peers", "max-allocations", "http"];

describe("wardline relay: help", () => {
  it("documents every option and its environment variable in --help, -h and help relay", async () => {
    for (const argv of [["relay", "--help"], ["relay", "-h"], ["help", "relay"]]) {
      const io = captureIo();
      expect(await main(argv, io), argv.join(" ")).toBe(0);
      expect(io.out).toBe(RELAY_HELP);
      expect(io.err).toBe("");
    }
    for (const option of OPTIONS) {
      expect(RELAY_HELP).toContain(`--${option}`);
      expect(RELAY_HELP).toContain(`WARDLINE_RELAY_${option.toUpperCase().replace(/-/g, "_")}`);
    }
    const io = captureIo();
    await main(["--help"], io);
    expect(io.out).toMatch(/^\s+relay\s/m);
  });
});

describe("wardline relay: bad command lines exit 2 naming the option", () => {
  /** Each case: flags over GOOD (undefined drops one), and the option its message must name. */
  const CASES: { flags: Record<string, string | undefined>; names: string }[] = [
    { flags: { secret: undefined }, names: "--secret" },
    { flags: { secret: "" }, names: "--secret" },
    { flags: { realm: "" }, names: "--realm" },
    { flags: { realm: "r".repeat(764) }, names: "--realm" },
    ...["", "abc", "65536", "99999", "3478.5", "0x10", "+1"].map((port) => ({ flags: { port }, names: "--port" })),
    ...["1000", "a-b", "1000-", "2000-1000", "0-100", "1000-65536", "1000:2000"].map((ports) => ({ flags: { ports }, names: "--ports" })),
    ...["", "1.2.3", "256.1.1.1", "1.2.3.4.5", "01.2.3.4", "::1", "localhost"].map((listen4) => ({ flags: { listen4 }, names: "--listen4" })),
    ...["127.0.0.1", "fe80::zz", "localhost", ""].map((listen6) => ({ flags: { listen6 }, names: "--listen6" })),
    { flags: { listen4: "off", listen6: "off" }, names: "--listen4 and --listen6" },
    ...["example.com", "1.2.3.4.5", "::1", ""].map((ip) => ({ flags: { "public-ip4": ip }, names: "--public-ip4" })),
    ...["192.0.2.1", "relay.example", ""].map((ip) => ({ flags: { "public-ip6": ip }, names: "--public-ip6" })),
    ...["9478", ":9478", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536", ""].map((http) => ({ flags: { http }, names: "--http" })),
    ...["0", "000", "abc", "1.5", "1234567", ""].map((max) => ({ flags: { "max-allocations": max }, names: "--max-allocations" })),
  ];

  for (const { flags, names } of CASES) {
    const merged = Object.fromEntries(Object.entries({ ...GOOD, ...flags }).filter((e): e is [string, string] => e[1] !== undefined));
    it(`${JSON.stringify(flags).slice(0, 60)} → ${names}`, async () => {
      // relayConfig first: were the case accepted, relayCommand would start a relay and run until a signal.
      expect(() => relayConfig(merged, {})).toThrow(names);
      const io = captureIo();
      expect(await relayCommand(argvOf(merged), io, {})).toBe(2);
      expect(io.err).toMatch(/^wardline relay: /);
      expect(io.err.split("\n")[0]).toContain(names);
      expect(io.out).toBe("");
    });
  }

  it("the same values from the environment are refused the same way, naming the variable they came from", async () => {
    const env = { WARDLINE_RELAY_SECRET: "s3cret", WARDLINE_RELAY_LISTEN6: "off" };
    for (const [variable, value] of [
      ["WARDLINE_RELAY_PORT", "abc"],
      ["WARDLINE_RELAY_PORTS", "2000-1000"],
      ["WARDLINE_RELAY_LISTEN4", "1.2.3"],
      ["WARDLINE_RELAY_LISTEN6", "1:2"],
      ["WARDLINE_RELAY_PUBLIC_IP4", "example.com"],
      ["WARDLINE_RELAY_PUBLIC_IP6", ":::"],
      ["WARDLINE_RELAY_HTTP", "9478"],
      ["WARDLINE_RELAY_MAX_ALLOCATIONS", "0"],
      ["WARDLINE_RELAY_REALM", ""],
      ["WARDLINE_RELAY_ALLOW_PRIVATE_PEERS", "maybe"],
    ] as const) {
      const names = variable;
      expect(() => relayConfig({}, { ...env, [variable]: value }), variable).toThrow(names);
      const io = captureIo();
      expect(await relayCommand([], io, { ...env, [variable]: value }), variable).toBe(2);
      expect(io.err, variable).toMatch(new RegExp(`^wardline relay: .*${names}`));
    }
  });

  it("unknown options, options without their value and extra arguments are usage errors, with the help", async () => {
    for (const [argv, says] of [
      [["--nope"], "unknown option '--nope'"],
      [[...argvOf(GOOD), "--port"], "--port"],
      [[...argvOf(GOOD), "extra"], "unexpected argument 'extra'"],
      [[...argvOf(GOOD), "--allow-private-peers=yes"], "--allow-private-peers"],
    ] as const) {
      const io = captureIo();
      expect(await relayCommand(argv, io, {}), argv.join(" ")).toBe(2);
      expect(io.err).toMatch(/^wardline relay: /);
      expect(io.err.split("\n")[0]).toContain(says);
      expect(io.err).toContain(RELAY_HELP);
      expect(io.out).toBe("");
    }
  });

  it("main passes `relay` on, unknown options included", async () => {
    const io = captureIo();
    expect(await main(["relay", "--nope"], io)).toBe(2);
    expect(io.err).toMatch(/^wardline relay: unknown option '--nope'/);
  });
});

describe("wardline relay: flags, then environment, then defaults", () => {
  const ENV = {
    WARDLINE_RELAY_SECRET: "env-secret",
    WARDLINE_RELAY_REALM: "env.example",
    WARDLINE_RELAY_PORT: "3479",
    WARDLINE_RELAY_LISTEN4: "127.0.0.1",
    WARDLINE_RELAY_LISTEN6: "::1",
    WARDLINE_RELAY_PUBLIC_IP4: "203.0.113.7",
    WARDLINE_RELAY_PUBLIC_IP6: "2001:db8::7",
    WARDLINE_RELAY_PORTS: "40000-40100",
    WARDLINE_RELAY_ALLOW_PRIVATE_PEERS: "1",
    WARDLINE_RELAY_MAX_ALLOCATIONS: "3",
    WARDLINE_RELAY_HTTP: "[::1]:9100",
  };

  it("reads every option from its environment variable when the flag is absent", () => {
    expect(relayConfig({}, ENV)).toEqual<RelayConfig>({
      secret: "env-secret",
      portal: undefined,
      realm: "env.example",
      port: 3479,
      listen: { 4: "127.0.0.1", 6: "::1" },
      publicAddress: { 4: "203.0.113.7", 6: "2001:db8::7" },
      ports: [40000, 40100],
      allowPrivatePeers: true,
      maxAllocationsPerUser: 3,
      http: { host: "::1", port: 9100 },
    });
  });

  it("a flag wins over its environment variable", () => {
    const flags = {
      secret: "flag-secret",
      realm: "flag.example",
      port: "4000",
      listen4: "127.0.0.2",
      listen6: "off",
      "public-ip4": "198.51.100.1",
      "public-ip6": "2001:db8::1",
      ports: "50000-50010",
      "max-allocations": "7",
      http: "off",
    };
    expect(relayConfig(flags, ENV)).toEqual<RelayConfig>({
      secret: "flag-secret",
      portal: undefined,
      realm: "flag.example",
      port: 4000,
      listen: { 4: "127.0.0.2" },
      publicAddress: { 4: "198.51.100.1", 6: "2001:db8::1" },
      ports: [50000, 50010],
      allowPrivatePeers: true,
      maxAllocationsPerUser: 7,
      http: undefined,
    });
    // A good flag over a bad variable: the variable is never read.
    expect(() => relayConfig({ ...GOOD, port: "3478" }, { WARDLINE_RELAY_PORT: "nope" })).not.toThrow();
    expect(relayConfig({ ...GOOD, http: "127.0.0.1:9999" }, { WARDLINE_RELAY_HTTP: "off" }).http).toEqual({ host: "127.0.0.1", port: 9999 });
  });

  it("--allow-private-peers: the flag, or the variable set to 1, true or yes; 0, false, no or empty leave it off", () => {
    expect(relayConfig(GOOD, {}).allowPrivatePeers).toBe(false);
    expect(relayConfig({ ...GOOD, "allow-private-peers": true }, {}).allowPrivatePeers).toBe(true);
    for (const value of ["1", "true", "YES"]) expect(relayConfig(GOOD, { WARDLINE_RELAY_ALLOW_PRIVATE_PEERS: value }).allowPrivatePeers, value).toBe(true);
    for (const value of ["0", "", "false", "no"]) expect(relayConfig(GOOD, { WARDLINE_RELAY_ALLOW_PRIVATE_PEERS: value }).allowPrivatePeers, value).toBe(false);
  });

  it("defaults: realm wardline, port 3478, ports 49152-65535, 10 allocations, status on 127.0.0.1:9478, public addresses from the listening ones", () => {
    expect(relayConfig({ secret: "s", listen4: "127.0.0.1", listen6: "::1" }, {})).toEqual<RelayConfig>({
      secret: "s",
      portal: undefined,
      realm: "wardline",
      port: 3478,
      listen: { 4: "127.0.0.1", 6: "::1" },
      publicAddress: { 4: "127.0.0.1", 6: "::1" },
      ports: [49152, 65535],
      allowPrivatePeers: false,
      maxAllocationsPerUser: 10,
      http: { host: "127.0.0.1", port: 9478 },
    });
    // Wildcards listen on both families; a public address then comes from this host's interfaces, if any.
    const wild = relayConfig({ secret: "s" }, {});
    expect(wild.listen).toEqual({ 4: "0.0.0.0", 6: "::" });
    expect(wild.publicAddress[4]).not.toBe("0.0.0.0");
    expect(wild.publicAddress[6]).not.toBe("::");
  });

  it("accepts the edges: port 0, a one-port range, the last port, 763-byte realms, an IPv6 status address", () => {
    const config = relayConfig({ ...GOOD, port: "0", ports: "65535-65535", realm: "r".repeat(763), "max-allocations": "999999", http: "[::1]:0" }, {});
    expect(config.port).toBe(0);
    expect(config.ports).toEqual([65535, 65535]);
    expect(config.realm).toHaveLength(763);
    expect(config.maxAllocationsPerUser).toBe(999999);
    expect(config.http).toEqual({ host: "::1", port: 0 });
  });
});

describe("wardline relay: run-time failures exit 1 with a JSON log line", () => {
  const lastLog = (err: string): Record<string, unknown> => JSON.parse(err.trim().split("\n").pop()!) as Record<string, unknown>;

  it("when the listening address is not this host's", async () => {
    const io = captureIo();
    // 192.0.2.1 is TEST-NET-1 (RFC 5737), on no host's interfaces.
    expect(await relayCommand(argvOf({ ...GOOD, listen4: "192.0.2.1", port: "0" }), io, {})).toBe(1);
    expect(lastLog(io.err)).toMatchObject({ level: "error", msg: "cannot start" });
  });

  it("when the status address cannot be bound (the relay is closed again)", async () => {
    const io = captureIo();
    expect(await relayCommand(argvOf({ ...GOOD, port: "0", http: "192.0.2.1:0" }), io, {})).toBe(1);
    expect(lastLog(io.err)).toMatchObject({ level: "error", msg: "cannot serve the status endpoints", http: { host: "192.0.2.1", port: 0 } });
  });
});

/** A token of `kind` shaped as the portal issues them, which no portal knows. */
const fakeToken = (kind: PortalTokenKind): string => `${TOKEN_PREFIXES[kind]}_${randomUUID()}.${randomBytes(32).toString("base64url")}`;

describe("wardline relay: the portal's tokens, as the relay reads them", () => {
  it("parsePortalToken reads every kind the portal issues as the portal's own parseToken does", () => {
    for (const kind of Object.keys(TOKEN_PREFIXES) as PortalTokenKind[]) {
      for (let i = 0; i < 20; i++) {
        const { token, id } = issueSecret(kind);
        expect(parsePortalToken(token), token.slice(0, 8)).toEqual(parseToken(token));
        expect(parsePortalToken(token)).toMatchObject({ kind, id });
      }
    }
  });
});

describe("wardline relay: registered with a portal, configuration", () => {
  const RELAY_TOKEN = fakeToken("relay");
  /** A command line that relayConfig accepts for a registered relay. */
  const PORTAL_GOOD: Flags = { "portal-url": "https://portal.example:8443", token: RELAY_TOKEN, listen4: "127.0.0.1", listen6: "off", http: "off" };
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), "wardline-relay-test-"));
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  /** A token file under the scratch directory, with `mode`. */
  const tokenFile = async (name: string, text: string, mode = 0o600): Promise<string> => {
    const path = join(scratch, name);
    await writeFile(path, text);
    await chmod(path, mode);
    return path;
  };

  it("takes the URL and the token, from flags or the environment; the token's secret replaces --secret", async () => {
    expect(relayConfig(PORTAL_GOOD, {})).toMatchObject({ secret: undefined, portal: { url: "https://portal.example:8443", token: { text: RELAY_TOKEN } } });
    const fromEnv = relayConfig({ listen4: "127.0.0.1", listen6: "off" }, { WARDLINE_RELAY_PORTAL_URL: "http://127.0.0.1:8080/", WARDLINE_RELAY_TOKEN_FILE: "/etc/wardline/relay.token" });
    expect(fromEnv).toMatchObject({ secret: undefined, portal: { url: "http://127.0.0.1:8080/", token: { file: "/etc/wardline/relay.token", option: "WARDLINE_RELAY_TOKEN_FILE" } } });
    // A flag wins over its variable here too, and the variable is then not checked.
    expect(relayConfig(PORTAL_GOOD, { WARDLINE_RELAY_PORTAL_URL: "nope", WARDLINE_RELAY_TOKEN: "nope" }).portal?.url).toBe("https://portal.example:8443");
  });

  /** Each case: flags (merged over PORTAL_GOOD unless `alone`), and what the first line must name. */
  const CASES: { why: string; flags: Record<string, string | undefined>; names: string[] }[] = [
    ...["ftp://portal.example", "portal.example", "http://", "http://portal.example/?x=1", "http://portal.example/#x", ""].map((url) => ({
      why: `URL '${url}'`,
      flags: { "portal-url": url },
      names: ["--portal-url"],
    })),
    { why: "credentials in the URL, not echoed", flags: { "portal-url": "https://admin:hunter2@portal.example" }, names: ["--portal-url", "<hidden>"] },
    { why: "a client token", flags: { token: fakeToken("client") }, names: ["--token", "client token, not a relay token"] },
    { why: "a gateway token", flags: { token: fakeToken("gateway") }, names: ["--token", "gateway token, not a relay token"] },
    { why: "not a token", flags: { token: "relay-secret" }, names: ["--token", "does not hold a Wardline token"] },
    { why: "a token without a portal", flags: { "portal-url": undefined }, names: ["--token needs the portal", "--portal-url"] },
    { why: "a portal without a token", flags: { token: undefined }, names: ["--portal-url needs the relay token", "--token-file"] },
    { why: "both --token and --token-file", flags: { "token-file": "/x" }, names: ["--token and --token-file"] },
    { why: "--secret beside a token", flags: { secret: "s3cret" }, names: ["--secret is for a standalone relay"] },
    { why: "an empty --token-file", flags: { token: undefined, "token-file": "" }, names: ["--token-file"] },
  ];

  for (const { why, flags, names } of CASES) {
    it(`${why} → exit 2 naming ${names.join(", ")}`, async () => {
      const merged = Object.fromEntries(Object.entries({ ...PORTAL_GOOD, ...flags }).filter((e): e is [string, string] => e[1] !== undefined));
      expect(() => relayConfig(merged, {})).toThrow();
      const io = captureIo();
      expect(await relayCommand(argvOf(merged), io, {})).toBe(2);
      const first = io.err.split("\n")[0]!;
      expect(first).toMatch(/^wardline relay: /);
      for (const name of names) expect(first).toContain(name);
      // A token, even a wrong one, is a secret: no message repeats it.
      expect(io.err).not.toContain(flags.token ?? RELAY_TOKEN);
      expect(io.err).not.toContain(RELAY_TOKEN.split(".")[1]);
      expect(io.err).not.toContain("hunter2");
      expect(io.out).toBe("");
    });
  }

  it("the same mistakes from the environment name the variable", async () => {
    const base = { WARDLINE_RELAY_LISTEN4: "127.0.0.1", WARDLINE_RELAY_LISTEN6: "off", WARDLINE_RELAY_HTTP: "off" };
    for (const [env, names] of [
      [{ WARDLINE_RELAY_PORTAL_URL: "portal.example", WARDLINE_RELAY_TOKEN: RELAY_TOKEN }, "WARDLINE_RELAY_PORTAL_URL"],
      [{ WARDLINE_RELAY_PORTAL_URL: "http://portal.example", WARDLINE_RELAY_TOKEN: fakeToken("api") }, "WARDLINE_RELAY_TOKEN holds a api token"],
      [{ WARDLINE_RELAY_TOKEN: RELAY_TOKEN }, "WARDLINE_RELAY_TOKEN needs the portal"],
      [{ WARDLINE_RELAY_PORTAL_URL: "http://portal.example" }, "WARDLINE_RELAY_PORTAL_URL needs the relay token"],
      [{ WARDLINE_RELAY_PORTAL_URL: "http://portal.example", WARDLINE_RELAY_TOKEN: RELAY_TOKEN, WARDLINE_RELAY_SECRET: "s" }, "WARDLINE_RELAY_SECRET is for a standalone relay"],
      [{ WARDLINE_RELAY_PORTAL_URL: "http://portal.example", WARDLINE_RELAY_TOKEN_FILE: join(scratch, "absent") }, "WARDLINE_RELAY_TOKEN_FILE: no file"],
    ] as const) {
      const io = captureIo();
      expect(await relayCommand([], io, { ...base, ...env }), names).toBe(2);
      expect(io.err.split("\n")[0], names).toContain(names);
    }
  });

  it("a token file that is missing, readable by others, empty or holding another kind of token is a usage error naming --token-file", async () => {
    const cases: [string, string][] = [
      [join(scratch, "absent.token"), "no file"],
      [await tokenFile("open.token", RELAY_TOKEN, 0o644), "chmod 600"],
      [await tokenFile("empty.token", "\n"), "is empty"],
      [await tokenFile("gateway.token", `${fakeToken("gateway")}\n`), "gateway token, not a relay token"],
    ];
    for (const [path, says] of cases) {
      const io = captureIo();
      expect(await relayCommand([...argvOf(PORTAL_GOOD).filter((a) => a !== "--token" && a !== RELAY_TOKEN), "--token-file", path], io, {}), path).toBe(2);
      const first = io.err.split("\n")[0]!;
      expect(first, path).toMatch(/^wardline relay: --token-file/);
      expect(first, path).toContain(says);
    }
  });
});

// --- A registered relay against a real portal, in process ---

/** A relayCommand running in process, stopped through its abort signal. */
interface RunningRelay {
  io: CapturedIo;
  exit: Promise<number>;
  stop(): Promise<number>;
}

const running: RunningRelay[] = [];

function startRelay(flags: Flags): RunningRelay {
  const io = captureIo();
  const controller = new AbortController();
  const exit = relayCommand(argvOf(flags), Object.assign(io, { signal: controller.signal }), {});
  const relay = {
    io,
    exit,
    stop: () => {
      controller.abort();
      return exit;
    },
  };
  running.push(relay);
  return relay;
}

/** The relay's JSON log lines. */
const logs = (io: CapturedIo): Record<string, unknown>[] =>
  io.err.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as Record<string, unknown>);

/** The first log line with `msg`, once the relay has written it. */
async function logged(io: CapturedIo, msg: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = logs(io).find((l) => l.msg === msg);
    if (line !== undefined) return line;
    if (Date.now() > deadline) throw new Error(`no '${msg}' log line within ${timeoutMs} ms; stderr:\n${io.err}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Where the running relay listens (IPv4) and serves /readyz, from its "relaying" line. */
async function endpoints(io: CapturedIo): Promise<{ port: number; http: string }> {
  const line = (await logged(io, "relaying")) as { listen: Record<string, string>; http: string };
  return { port: Number(line.listen["4"]!.split(":").pop()), http: `http://${line.http}` };
}

/** A client device on the portal, its events kept for the test to wait on. */
class ClientDevice {
  readonly events: PortalSocketEvent<"client">[] = [];
  readonly socket: PortalSocket<"client">;

  constructor(portalUrl: string, token: string) {
    this.socket = new PortalSocket({ portalUrl, role: "client", token, query: { public_key: randomPublicKey(), name: "client under test" }, onEvent: (e) => this.events.push(e) });
    this.socket.start();
  }

  async until<T extends PortalSocketEvent<"client">>(match: (e: PortalSocketEvent<"client">) => e is T, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(match);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no matching event within ${timeoutMs} ms; had ${JSON.stringify(this.events.map((e) => e.type))}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Runs a TurnAllocation's Allocate against `server` on a real UDP socket; resolves to its outcome. */
async function allocate(server: { address: string; port: number }, username: string, password: string): Promise<TurnClientEvent> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const client = new TurnAllocation({ server: { family: 4, ...server }, username, password, random: (n) => new Uint8Array(randomBytes(n)) });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<TurnClientEvent>((resolve, reject) => {
      const drain = (): void => {
        for (let t = client.pollTransmit(); t !== undefined; t = client.pollTransmit()) socket.send(t.bytes, t.to.port, t.to.address);
        for (let e = client.pollEvent(); e !== undefined; e = client.pollEvent()) if (e.type === "allocated" || e.type === "failed") resolve(e);
        clearTimeout(timer);
        const at = client.pollTimeout();
        if (at !== undefined) {
          timer = setTimeout(() => {
            client.handleTimeout(performance.now());
            drain();
          }, Math.max(0, at - performance.now()));
        }
      };
      socket.on("message", (message, from) => {
        client.handleDatagram(performance.now(), { family: 4, address: from.address, port: from.port }, message);
        drain();
      });
      socket.on("error", reject);
      client.allocate(performance.now());
      drain();
    });
  } finally {
    clearTimeout(timer);
    socket.close();
  }
}

/** A relay on loopback: its own port, relayed ports from `ports`, status on any port. */
const LOOPBACK_RELAY: Flags = { listen4: "127.0.0.1", listen6: "off", port: "0", http: "127.0.0.1:0" };

describe("wardline relay: registered with a real portal (PGlite)", () => {
  let t: TestPortal;
  let scratch: string;
  const devices: ClientDevice[] = [];
  beforeAll(async () => {
    t = await startTestPortal(DATABASES[0]!);
    scratch = await mkdtemp(join(tmpdir(), "wardline-relay-test-"));
  }, 60_000);
  afterEach(async () => {
    for (const device of devices.splice(0)) await device.socket.stop();
    for (const relay of running.splice(0)) await relay.stop();
  });
  afterAll(async () => {
    await t?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  const clientDevice = async (): Promise<ClientDevice> => {
    const user = await t.actorWithToken(t.a, "user");
    const { token } = await issueToken(t.a.scope, { kind: "client", actorId: user.actor.id, expiresAt: new Date(Date.now() + 3_600_000) });
    const device = new ClientDevice(t.portal.url, token);
    devices.push(device);
    return device;
  };

  it("joins with its token; a client is handed it with credentials a real Allocate accepts; revoking the token makes it exit 1", async () => {
    const issued = await t.call<{ id: string; token: string }>("POST", "/api/relay_tokens", { body: { name: "relay under test" } });
    expect(issued.status).toBe(201);
    const file = join(scratch, "relay.token");
    await writeFile(file, `${issued.body.token}\n`, { mode: 0o600 });
    const relay = startRelay({ ...LOOPBACK_RELAY, "portal-url": t.portal.url, "token-file": file, ports: "50300-50349" });
    const { port, http } = await endpoints(relay.io);
    const joined = await logged(relay.io, "joined the portal");
    expect(joined).toMatchObject({ level: "info", announced: { ipv4: "127.0.0.1", port } });
    expect(logs(relay.io).find((l) => l.msg === "relaying")).toMatchObject({ portal: t.portal.url, relay: issued.body.id });
    expect((await fetch(`${http}/readyz`)).status).toBe(200);
    // The secret never reaches the log.
    expect(relay.io.err).not.toContain(issued.body.token.split(".")[1]);

    const client = await clientDevice();
    const init = await client.until((e): e is Extract<PortalSocketEvent<"client">, { type: "message"; event: "init" }> => e.type === "message" && e.event === "init");
    const mine = init.payload.relays.find((r) => r.id === issued.body.id);
    expect(mine).toMatchObject({ type: "turn", addr: `127.0.0.1:${port}`, username: expect.stringMatching(/^\d+:/) as string });
    expect(Date.parse(mine!.expires_at)).toBeGreaterThan(Date.now());

    const allocated = await allocate({ address: "127.0.0.1", port }, mine!.username, mine!.password);
    expect(allocated).toMatchObject({ type: "allocated", relayed: [{ family: 4, address: "127.0.0.1" }] });
    const relayed = (allocated as Extract<TurnClientEvent, { type: "allocated" }>).relayed[0]!.port;
    expect(relayed).toBeGreaterThanOrEqual(50300);
    expect(relayed).toBeLessThanOrEqual(50349);
    // The credentials are what let it in: the same username with another password is refused.
    const wrong = await allocate({ address: "127.0.0.1", port }, mine!.username, Buffer.from(randomBytes(20)).toString("base64"));
    expect(wrong).toMatchObject({ type: "failed", operation: "allocate", code: 401 });

    // The relay reports its load, and the admin API shows it: the allocation above (the client
    // closed its socket, not the allocation, which lives out its lifetime).
    const listed = async (): Promise<RelayView | undefined> =>
      (await t.call<{ data: RelayView[] }>("GET", "/api/relays?limit=500")).body.data.find((r) => r.id === issued.body.id);
    await expect.poll(async () => (await listed())?.load?.allocations, { timeout: 10_000 }).toBe(1);
    expect((await listed())!.load).toMatchObject({ channels: 0, bytes_per_second: 0 });

    expect((await t.call("DELETE", `/api/tokens/${issued.body.id}`)).status).toBe(204);
    expect(await relay.exit).toBe(1);
    expect(logs(relay.io).at(-1)).toMatchObject({ level: "error", msg: expect.stringMatching(/^signed out: the portal refused the relay token/) as string, status: 401 });
    // The portal took it away from the client.
    const gone = await client.until((e): e is Extract<PortalSocketEvent<"client">, { type: "message"; event: "relays_presence" }> => e.type === "message" && e.event === "relays_presence");
    expect(gone.payload.disconnected_ids).toContain(issued.body.id);
  }, 60_000);

  it("a relay token the portal does not know: exit 1 with a clear message, never joined", async () => {
    const relay = startRelay({ ...LOOPBACK_RELAY, "portal-url": t.portal.url, token: fakeToken("relay"), ports: "50350-50359" });
    expect(await relay.exit).toBe(1);
    expect(logs(relay.io).some((l) => l.msg === "joined the portal")).toBe(false);
    expect(logs(relay.io).at(-1)).toMatchObject({ level: "error", msg: expect.stringMatching(/refused the relay token \(revoked, expired or unknown\)/) as string, status: 401 });
  }, 30_000);

  it("not ready while the portal is out of reach: it logs the disconnect, tries again, and stops with 0", async () => {
    const closed = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const relay = startRelay({ ...LOOPBACK_RELAY, "portal-url": `http://127.0.0.1:${closed}`, token: fakeToken("relay"), ports: "50360-50369" });
    const { http } = await endpoints(relay.io);
    expect(await logged(relay.io, "disconnected from the portal")).toMatchObject({ level: "info", retryInMs: expect.any(Number) as number });
    expect((await fetch(`${http}/readyz`)).status).toBe(503);
    expect((await fetch(`${http}/healthz`)).status).toBe(200);
    expect(await relay.stop()).toBe(0);
    expect(logs(relay.io).at(-1)).toMatchObject({ msg: "shutting down", signal: "abort" });
  }, 30_000);
});

// --- Prometheus text exposition format 0.0.4, parsed strictly ---

interface Sample {
  labels: Record<string, string>;
  value: number;
}

interface Family {
  help: string | undefined;
  type: string | undefined;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/** Reads a label set from `{` at text[at]; returns it and where it ends (after `}`), or throws. */
function parseLabels(text: string, at: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = at + 1;
  while (text[i] !== "}") {
    const eq = text.indexOf("=", i);
    if (eq < 0) throw new Error(`label without '=' in ${text}`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`bad label name ${JSON.stringify(name)} in ${text}`);
    if (name in labels) throw new Error(`label ${name} twice in ${text}`);
    if (text[eq + 1] !== '"') throw new Error(`label value not quoted in ${text}`);
    let value = "";
    let j = eq + 2;
    for (;; j++) {
      const c = text[j];
      if (c === undefined) throw new Error(`unterminated label value in ${text}`);
      if (c === '"') break;
      if (c === "\\") {
        const next = text[++j];
        if (next === "n") value += "\n";
        else if (next === "\\" || next === '"') value += next;
        else throw new Error(`bad escape \\${next} in ${text}`);
      } else if (c === "\n") {
        throw new Error(`raw newline in a label value in ${text}`);
      } else {
        value += c;
      }
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ",") i++;
    else if (text[i] !== "}") throw new Error(`expected ',' or '}' after a label in ${text}`);
  }
  return { labels, end: i + 1 };
}

/** Parses exposition text into families, enforcing what Prometheus's own parser does; throws on anything else. */
function parsePrometheus(text: string): Map<string, Family> {
  if (text !== "" && !text.endsWith("\n")) throw new Error("the text does not end with a newline");
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) families.set(name, (f = { help: undefined, type: undefined, samples: [] }));
    return f;
  };
  let current: string | undefined;
  for (const line of text.split("\n").slice(0, -1)) {
    const comment = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (comment !== null) {
      const [, keyword, name, rest] = comment as unknown as [string, "HELP" | "TYPE", string, string];
      if (!METRIC_NAME.test(name)) throw new Error(`bad metric name in ${line}`);
      const f = family(name);
      if (keyword === "HELP") {
        if (f.help !== undefined) throw new Error(`second HELP for ${name}`);
        if (/\\(?![\\n])/.test(rest)) throw new Error(`bad escape in ${line}`);
        f.help = rest.replace(/\\(\\|n)/g, (_, c: string) => (c === "n" ? "\n" : "\\"));
      } else {
        if (f.type !== undefined) throw new Error(`second TYPE for ${name}`);
        if (f.samples.length > 0) throw new Error(`TYPE for ${name} after its samples`);
        if (!TYPES.has(rest)) throw new Error(`unknown type in ${line}`);
        f.type = rest;
      }
      continue;
    }
    if (line.startsWith("#") || line.trim() === "") continue;
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
    if (name === undefined) throw new Error(`not a sample: ${line}`);
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith("{")) {
      const parsed = parseLabels(line, name.length);
      labels = parsed.labels;
      rest = line.slice(parsed.end);
    }
    const value = /^ (\S+)(?: -?\d+)?$/.exec(rest)?.[1];
    if (value === undefined || !/^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)|[+-]?Inf|NaN)$/.test(value)) throw new Error(`bad value in ${line}`);
    // The samples of a family come together (counter, gauge: no suffixes).
    if (current !== name && families.get(name)?.samples.length) throw new Error(`samples of ${name} are not together`);
    current = name;
    family(name).samples.push({ labels, value: value.endsWith("Inf") ? (value.startsWith("-") ? -Infinity : Infinity) : Number(value) });
  }
  for (const [name, f] of families) if (f.type === undefined || f.help === undefined) throw new Error(`${name} lacks HELP or TYPE`);
  return families;
}

describe("parsePrometheus, the oracle", () => {
  it("refuses what Prometheus refuses", () => {
    const family = "# HELP m Help.\n# TYPE m counter\n";
    expect(parsePrometheus(`${family}m{a="x\\"y\\\\z\\n"} 1\n`).get("m")!.samples).toEqual([{ labels: { a: 'x"y\\z\n' }, value: 1 }]);
    for (const [text, why] of [
      [`${family}m 1`, "no final newline"],
      ["# TYPE m counter\nm 1\n", "no HELP"],
      ["# HELP m Help.\nm 1\n", "no TYPE"],
      ["# HELP m Help.\nm 1\n# TYPE m counter\n", "TYPE after samples"],
      [`${family}# TYPE m gauge\nm 1\n`, "two TYPEs"],
      [`${family}m{a="x"y"} 1\n`, "unescaped quote"],
      [`${family}m{a="x\\ty"} 1\n`, "unknown escape"],
      [`${family}m{a=x} 1\n`, "unquoted value"],
      [`${family}m{1a="x"} 1\n`, "bad label name"],
      [`${family}m{a="x",a="y"} 1\n`, "repeated label"],
      [`${family}m one\n`, "bad value"],
      [`${family}m  1\n`, "two spaces"],
      [`${family}# HELP n N.\n# TYPE n gauge\nm 1\nn 1\nm 2\n`, "samples apart"],
    ] as const) {
      expect(() => parsePrometheus(text), why).toThrow();
    }
  });
});

describe("relayMetrics: Prometheus text", () => {
  const stats = (): TurnServerStats => ({ allocations: 3, channels: 5, permissions: 4, requests: 1234, dropped: { "bad-integrity": 2, "not-stun": 9 } });
  const counters = (): RelayCounters => ({
    clientToPeerPackets: 100,
    clientToPeerBytes: 64_000,
    peerToClientPackets: 90,
    peerToClientBytes: 57_600,
    dropped: { truncated: 1, 'odd"reason\\with\nall three': 7 },
  });
  /** relayMetrics reads only the server's stats and the counters; a real Relay needs sockets and the engine. */
  const fakeRelay = (s: TurnServerStats, c: RelayCounters): Relay => ({ server: { stats: s }, counters: c }) as unknown as Relay;

  it("every family has HELP and TYPE; gauges for what is now, counters (_total) for what has been", () => {
    const families = parsePrometheus(relayMetrics(fakeRelay(stats(), counters())));
    const types = Object.fromEntries([...families].map(([name, f]) => [name, f.type]));
    expect(types).toEqual({
      wardline_relay_allocations: "gauge",
      wardline_relay_channels: "gauge",
      wardline_relay_permissions: "gauge",
      wardline_relay_requests_total: "counter",
      wardline_relay_packets_total: "counter",
      wardline_relay_bytes_total: "counter",
      wardline_relay_dropped_total: "counter",
    });
    for (const [name, f] of families) expect(f.help, name).toMatch(/\S/);
  });

  it("reports the relay's numbers, by direction and by reason, label values escaped", () => {
    const text = relayMetrics(fakeRelay(stats(), counters()));
    const families = parsePrometheus(text);
    const samples = (name: string): Sample[] => families.get(name)!.samples;
    expect(samples("wardline_relay_allocations")).toEqual([{ labels: {}, value: 3 }]);
    expect(samples("wardline_relay_channels")).toEqual([{ labels: {}, value: 5 }]);
    expect(samples("wardline_relay_permissions")).toEqual([{ labels: {}, value: 4 }]);
    expect(samples("wardline_relay_requests_total")).toEqual([{ labels: {}, value: 1234 }]);
    expect(samples("wardline_relay_packets_total")).toEqual([
      { labels: { direction: "client_to_peer" }, value: 100 },
      { labels: { direction: "peer_to_client" }, value: 90 },
    ]);
    expect(samples("wardline_relay_bytes_total")).toEqual([
      { labels: { direction: "client_to_peer" }, value: 64_000 },
      { labels: { direction: "peer_to_client" }, value: 57_600 },
    ]);
    // The relay's own reasons as they are, the TurnServer's prefixed with server-.
    expect(Object.fromEntries(samples("wardline_relay_dropped_total").map((s) => [s.labels.reason!, s.value]))).toEqual({
      truncated: 1,
      'odd"reason\\with\nall three': 7,
      "server-bad-integrity": 2,
      "server-not-stun": 9,
    });
    expect(text).toContain('wardline_relay_dropped_total{reason="odd\\"reason\\\\with\\nall three"} 7\n');
  });

  it("a relay with nothing dropped still declares the dropped family", () => {
    const families = parsePrometheus(relayMetrics(fakeRelay({ ...stats(), dropped: {} }, { ...counters(), dropped: {} })));
    expect(families.get("wardline_relay_dropped_total")).toMatchObject({ type: "counter", samples: [] });
  });

  describe("of a real relay", () => {
    let relay: Relay | undefined;
    afterEach(() => relay?.close());

    it("parses, every number zero, freshly started", () => {
      relay = Relay.start({ listen: { 4: "127.0.0.1" }, port: 0, publicAddress: { 4: "127.0.0.1" }, ports: [50000, 50009], realm: "wardline", secrets: ["s"] });
      const families = parsePrometheus(relayMetrics(relay));
      expect(families.size).toBe(7);
      for (const [name, f] of families) for (const s of f.samples) expect(s.value, name).toBe(0);
    });
  });
});
