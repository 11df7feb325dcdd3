// `wardline up`: its help; every bad option refused with exit 2 naming it, before anything is
// opened; the defaults and the guessed public URL; then the real thing, twice over:
//
// 1. In process, portal and relay only (--no-gateway, loopback): the first start provisions and
//    prints a password that signs in, API calls that work when pasted into a shell, and a client
//    token; the relay joins and its address lands in the database; a second start on the same data
//    dir reuses everything (same site, same tokens, one of each); revoking the relay's token stops
//    `up` with exit 1, and the next start replaces that token and says so.
// 2. As a child process inside a network namespace the test makes (root, ip, nft, curl): with the
//    gateway, which goes online in site "default" with its nftables table; SIGTERM ends it with exit
//    0 and the table, the TUN device and forwarding gone; a second start reuses the data dir (same
//    site, same gateway device, no new tokens). Skipped with a reason without those tools; a failure
//    under CI=true.

import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { NamespaceProcess, WARDLINE_BIN } from "../bench/netns.js";
import { onPath } from "../bench/system.js";
import { parsePortalToken } from "../daemons/proto/portal/token.js";
import { openDatabase } from "../server/src/database/data-source.js";
import { captureIo, type CapturedIo } from "../test/support/cli.js";
import { main } from "./cli.js";
import { UP_HELP, UP_NAMES, upCommand, upConfig, type UpState } from "./up.js";

/** Every option upCommand takes. */
const OPTIONS = ["data-dir", "port", "host", "public-url", "admin", "relay-port", "public-ip4", "public-ip6", "allow-private-peers", "relay-http", "no-gateway", "gateway-http", "resolver", "log-format", "log-level"];

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "wardline-up-test-"));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe("wardline up: help", () => {
  it("--help, -h and help up print every option; the main help lists up", async () => {
    for (const argv of [["up", "--help"], ["up", "-h"], ["help", "up"]]) {
      const io = captureIo();
      expect(await main(argv, io), argv.join(" ")).toBe(0);
      expect(io.out).toBe(UP_HELP);
      expect(io.err).toBe("");
    }
    for (const option of OPTIONS) expect(UP_HELP).toContain(`--${option}`);
    for (const variable of ["WARDLINE_PUBLIC_URL", "WARDLINE_RELAY_PORT", "WARDLINE_RELAY_PUBLIC_IP4", "WARDLINE_RELAY_HTTP", "WARDLINE_RESOLVERS", "WARDLINE_LOG_FORMAT", "WARDLINE_LOG_LEVEL"]) {
      expect(UP_HELP).toContain(variable);
    }
    const io = captureIo();
    await main(["--help"], io);
    expect(io.out).toMatch(/^\s+up\s/m);
    expect(io.out).not.toContain("not implemented");
  });
});

describe("wardline up: bad command lines exit 2 naming the option, before anything is opened", () => {
  const CASES: { argv: string[]; env?: Record<string, string>; names: string }[] = [
    { argv: ["--port", "abc"], names: "--port" },
    { argv: ["--port", "65536"], names: "--port" },
    { argv: ["--host", "a host"], names: "--host" },
    { argv: ["--public-url", "ftp://portal.example"], names: "--public-url" },
    { argv: ["--public-url", "https://portal.example/?x=1"], names: "--public-url" },
    { argv: [], env: { WARDLINE_PUBLIC_URL: "portal.example" }, names: "WARDLINE_PUBLIC_URL" },
    { argv: ["--admin", "not-a-mail-address"], names: "--admin" },
    { argv: ["--relay-port", "70000"], names: "--relay-port" },
    { argv: [], env: { WARDLINE_RELAY_PORT: "abc" }, names: "WARDLINE_RELAY_PORT" },
    { argv: ["--relay-http", "9478"], names: "--relay-http" },
    { argv: ["--public-ip4", "1.2.3"], names: "--public-ip4" },
    { argv: ["--public-ip6", "192.0.2.1"], names: "--public-ip6" },
    { argv: ["--gateway-http", "127.0.0.1"], names: "--gateway-http" },
    { argv: ["--resolver", "dns.example"], names: "--resolver" },
    { argv: ["--log-format", "xml"], names: "--log-format" },
    { argv: ["--log-level", "loud"], names: "--log-level" },
    { argv: [], env: { WARDLINE_LOG_LEVEL: "loud" }, names: "WARDLINE_LOG_LEVEL" },
    { argv: ["--nope"], names: "unknown option '--nope'" },
    { argv: ["extra"], names: "unexpected argument 'extra'" },
  ];
  for (const { argv, env, names } of CASES) {
    it(`${JSON.stringify(argv)} ${env ? JSON.stringify(env) : ""} → ${names}`, async () => {
      const dataDir = join(scratch, "never-made");
      const io = captureIo();
      // A public address, so that a case fails for its own option and not for a host without one.
      expect(await upCommand(["--data-dir", dataDir, "--public-ip4", "192.0.2.1", ...argv], io, env ?? {})).toBe(2);
      expect(io.err.split("\n")[0]).toMatch(/^wardline up: /);
      expect(io.err.split("\n")[0]).toContain(names);
      expect(io.out).toBe("");
      expect(existsSync(dataDir)).toBe(false);
    });
  }
});

describe("wardline up: defaults", () => {
  it("data dir ./.wardline, portal 127.0.0.1:8080, relay 3478 with status on 9478, gateway status on 9479", () => {
    const config = upConfig({ "public-ip4": "192.0.2.1" }, {}, false);
    expect(config).toMatchObject({ dataDir: resolve(".wardline"), host: "127.0.0.1", port: 8080, publicUrl: undefined, adminEmail: "admin@localhost" });
    expect(config.relay).toMatchObject({ port: 3478, http: { host: "127.0.0.1", port: 9478 }, publicAddress: { 4: "192.0.2.1" }, allowPrivatePeers: false });
    expect(config.gateway).toMatchObject({ http: { host: "127.0.0.1", port: 9479 }, device: "wl-gateway", stateDir: join(resolve(".wardline"), "gateway") });
    expect(config.log).toEqual({ format: "json", level: "info" });
    expect(upConfig({ "public-ip4": "192.0.2.1", "no-gateway": true }, {}, true)).toMatchObject({ gateway: undefined, log: { format: "human" } });
  });

  it("listening on every address, the portal's public URL is where the relay is announced; --public-url and WARDLINE_PUBLIC_URL win", () => {
    expect(upConfig({ host: "0.0.0.0", "public-ip4": "192.0.2.1" }, {}, false).publicUrl).toBe("http://192.0.2.1:8080");
    expect(upConfig({ host: "0.0.0.0", port: "9000", "public-ip4": "192.0.2.1" }, {}, false).publicUrl).toBe("http://192.0.2.1:9000");
    expect(upConfig({ host: "0.0.0.0", "public-ip4": "192.0.2.1" }, { WARDLINE_PUBLIC_URL: "https://portal.example/" }, false).publicUrl).toBe("https://portal.example");
    expect(upConfig({ "public-ip4": "192.0.2.1", "public-url": "https://a.example" }, { WARDLINE_PUBLIC_URL: "https://b.example" }, false).publicUrl).toBe("https://a.example");
  });

  it("the relay takes its WARDLINE_RELAY_* variables, but not those that would register it elsewhere", () => {
    const config = upConfig({}, { WARDLINE_RELAY_PUBLIC_IP4: "192.0.2.9", WARDLINE_RELAY_PORT: "3479", WARDLINE_RELAY_SECRET: "standalone", WARDLINE_RELAY_TOKEN: "nope" }, false);
    expect(config.relay).toMatchObject({ port: 3479, publicAddress: { 4: "192.0.2.9" } });
  });
});

// --- 1: in process ---

/** An upCommand running in process, stopped through its abort signal. */
interface RunningUp {
  io: CapturedIo;
  exit: Promise<number>;
  stop(): Promise<number>;
}

const runs: RunningUp[] = [];
afterEach(async () => {
  await Promise.all(runs.splice(0).map((r) => r.stop()));
});

function startUp(argv: string[]): RunningUp {
  const io = captureIo();
  const controller = new AbortController();
  const exit = upCommand(argv, Object.assign(io, { signal: controller.signal }), {});
  const run = {
    io,
    exit,
    stop: () => {
      controller.abort();
      return exit;
    },
  };
  runs.push(run);
  return run;
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000, diagnostics = (): string => ""): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms\n${diagnostics()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What up printed on stdout, read back. */
interface Summary {
  portalUrl: string;
  password: string | undefined;
  link: string | undefined;
  portalArg: string;
  clientToken: string;
  /** The two printed API calls, as shell commands. */
  calls: [string, string];
  text: string;
}

function summary(text: string): Summary {
  const calls = [...text.matchAll(/^ +(curl .*\\\n.*)$/gm)].map((m) => m[1]!);
  const client = /wardline client --portal-url (\S+) --token (\S+)/.exec(text);
  if (calls.length !== 2 || client === null) throw new Error(`not the summary up prints:\n${text}`);
  return {
    portalUrl: /^ {2}portal +(\S+)/m.exec(text)![1]!,
    password: /^ {2}password +(\S+)/m.exec(text)?.[1],
    link: /^ {2}sign in +(\S+)/m.exec(text)?.[1],
    portalArg: client[1]!,
    clientToken: client[2]!,
    calls: [calls[0]!, calls[1]!],
    text,
  };
}

const logLines = (io: CapturedIo): Record<string, unknown>[] =>
  io.err.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as Record<string, unknown>);

/** Calls the portal's API with a bearer token. */
async function api<T>(base: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: (text === "" ? undefined : JSON.parse(text)) as T };
}

/** How many tokens of each kind the account has. */
async function tokenCounts(base: string, apiToken: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const kind of ["gateway", "relay", "client", "api"]) {
    const reply = await api<{ data: unknown[] }>(base, apiToken, "GET", `/api/tokens?kind=${kind}`);
    expect(reply.status).toBe(200);
    counts[kind] = reply.body.data.length;
  }
  return counts;
}

/** Runs a command line in sh; its stdout. */
const shell = (command: string): Promise<string> =>
  new Promise((resolveOut, reject) => execFile("sh", ["-c", command], { encoding: "utf8", timeout: 20_000 }, (error, stdout, stderr) => (error ? reject(new Error(`${command}: ${stderr}`)) : resolveOut(stdout))));

const readState = async (dataDir: string): Promise<UpState> => JSON.parse(await readFile(join(dataDir, "up.json"), "utf8")) as UpState;
const readToken = async (dataDir: string, name: string): Promise<string> => (await readFile(join(dataDir, "tokens", `${name}.token`), "utf8")).trim();

/** The relay endpoints the portal's database holds, read once up has stopped. */
async function relayEndpoints(dataDir: string): Promise<{ relay_id: string; ipv4: string | null; port: number }[]> {
  const db = await openDatabase({ dataDir });
  try {
    return (await db.query("SELECT relay_id::text, host(ipv4) AS ipv4, port FROM relay_endpoints")) as { relay_id: string; ipv4: string | null; port: number }[];
  } finally {
    await db.destroy();
  }
}

describe("wardline up: portal and relay in process", () => {
  const hasCurl = onPath("curl");
  if (!hasCurl && process.env.CI === "true") throw new Error("curl is needed to run the API calls wardline up prints");

  it("provisions once, prints what works, reuses it on the next start, and replaces a revoked token", { timeout: 120_000 }, async () => {
    const dataDir = join(scratch, "in-process");
    const argv = ["--data-dir", dataDir, "--port", "0", "--relay-port", "0", "--relay-http", "off", "--no-gateway", "--public-ip4", "127.0.0.1", "--log-format", "json"];

    // First start.
    const first = startUp(argv);
    const s1 = summary(await until("the first summary", () => (first.io.out.includes("Stop it with") ? first.io.out : undefined), 60_000, () => first.io.err));
    expect(s1.password).toBeDefined();
    expect(s1.link).toMatch(/\/api\/auth\/default\/magic\?token=/);
    expect(s1.portalArg).toBe(s1.portalUrl);
    expect(parsePortalToken(s1.clientToken)?.kind).toBe("client");
    expect(s1.text).toContain("--host 0.0.0.0"); // it listens on loopback only, and says so
    const joined = await until("the relay's join", () => logLines(first.io).find((l) => l.component === "relay" && l.msg === "joined the portal"), 15_000, () => first.io.err);
    const announced = joined.announced as { ipv4: string; port: number };
    expect(announced.ipv4).toBe("127.0.0.1");
    expect(logLines(first.io).find((l) => l.msg === "no gateway (--no-gateway): running the portal and the relay only")).toBeDefined();

    // What it keeps: ids, and each token in a file only its owner may read.
    const state = await readState(dataDir);
    expect(Object.keys(state).sort()).toEqual(["adminId", "apiClientId", "clientActorId", "groupId", "siteId"]);
    expect((await stat(join(dataDir, "tokens"))).mode & 0o777).toBe(0o700);
    for (const name of ["up.json", "tokens/gateway.token", "tokens/relay.token", "tokens/client.token", "tokens/api.token"]) {
      expect((await stat(join(dataDir, name))).mode & 0o777, name).toBe(0o600);
    }
    expect(await readToken(dataDir, "client")).toBe(s1.clientToken);
    const apiToken = await readToken(dataDir, "api");
    const base = s1.portalUrl;

    // The admin's password signs in.
    const signIn = await fetch(`${base}/api/auth/default/password`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "admin@localhost", password: s1.password }) });
    expect(signIn.status).toBeLessThan(300);
    expect(signIn.headers.get("set-cookie")).toMatch(/wardline_session=/);

    // The site, the group and its member, one token of each kind.
    const sites = await api<{ data: { id: string; name: string }[] }>(base, apiToken, "GET", "/api/sites");
    expect(sites.body.data).toEqual([expect.objectContaining({ id: state.siteId, name: UP_NAMES.site })]);
    const members = await api<{ data: { actor_id: string; name: string }[] }>(base, apiToken, "GET", `/api/groups/${state.groupId}/members`);
    expect(members.body.data).toEqual([expect.objectContaining({ actor_id: state.clientActorId, name: UP_NAMES.client })]);
    expect(await tokenCounts(base, apiToken)).toEqual({ gateway: 1, relay: 1, client: 1, api: 1 });

    // The printed API calls work as printed: a resource, then the group's policy for it.
    if (hasCurl) {
      // Not execFileSync: the portal answering curl runs in this very process.
      const resource = JSON.parse(await shell(s1.calls[0])) as { id: string; site_ids: string[] };
      expect(resource.site_ids).toEqual([state.siteId]);
      const policy = JSON.parse(await shell(s1.calls[1].replace("<resource id>", resource.id))) as { group_id: string; resource_id: string };
      expect(policy).toMatchObject({ group_id: state.groupId, resource_id: resource.id });
    } else {
      console.warn("skipping the printed API calls: curl is not installed (Debian: curl)");
    }

    expect(await first.stop()).toBe(0);
    expect(logLines(first.io).at(-1)).toMatchObject({ component: "up", msg: "stopped" });
    const relayId = parsePortalToken(await readToken(dataDir, "relay"))!.id;
    expect(await relayEndpoints(dataDir)).toEqual([{ relay_id: relayId, ipv4: "127.0.0.1", port: announced.port }]);

    // Second start: everything reused, no password printed, the password from before still works.
    const second = startUp(argv);
    const s2 = summary(await until("the second summary", () => (second.io.out.includes("Stop it with") ? second.io.out : undefined), 60_000, () => second.io.err));
    expect(s2.password).toBeUndefined();
    expect(s2.text).toContain("wardline portal --init-admin admin@localhost");
    expect(s2.clientToken).toBe(s1.clientToken);
    expect(s2.text).not.toContain("replaced");
    expect(await readState(dataDir)).toEqual(state);
    const base2 = s2.portalUrl;
    expect((await api<{ data: { id: string }[] }>(base2, apiToken, "GET", "/api/sites")).body.data.map((s) => s.id)).toEqual([state.siteId]);
    expect(await tokenCounts(base2, apiToken)).toEqual({ gateway: 1, relay: 1, client: 1, api: 1 });
    const signInAgain = await fetch(`${base2}/api/auth/default/password`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "admin@localhost", password: s1.password }) });
    expect(signInAgain.status).toBeLessThan(300);

    // Revoking the relay's token stops up: the relay cannot go on.
    await until("the relay's second join", () => logLines(second.io).find((l) => l.component === "relay" && l.msg === "joined the portal"), 15_000, () => second.io.err);
    expect((await api(base2, apiToken, "DELETE", `/api/tokens/${relayId}`)).status).toBe(204);
    expect(await second.exit).toBe(1);
    expect(logLines(second.io).find((l) => l.msg === "shutting down")).toMatchObject({ level: "error", reason: "the portal refused the relay token" });

    // Third start: a new relay token replaces the revoked one, and it says so.
    const third = startUp(argv);
    const s3 = summary(await until("the third summary", () => (third.io.out.includes("Stop it with") ? third.io.out : undefined), 60_000, () => third.io.err));
    expect(s3.text).toMatch(/replaced +the relay token/);
    const newRelay = await readToken(dataDir, "relay");
    expect(parsePortalToken(newRelay)!.id).not.toBe(relayId);
    expect(s3.clientToken).toBe(s1.clientToken);
    expect(await tokenCounts(s3.portalUrl, apiToken)).toEqual({ gateway: 1, relay: 1, client: 1, api: 1 });
    await until("the relay's join with the new token", () => logLines(third.io).find((l) => l.component === "relay" && l.msg === "joined the portal"), 15_000, () => third.io.err);
    expect(await third.stop()).toBe(0);
  });

  it("a relay port in use: exit 1 naming the relay, and the portal closed again", { timeout: 60_000 }, async () => {
    const busy = createSocket("udp4");
    await new Promise<void>((r) => busy.bind(0, "0.0.0.0", () => r()));
    try {
      const io = captureIo();
      const argv = ["--data-dir", join(scratch, "busy"), "--port", "0", "--relay-port", String(busy.address().port), "--relay-http", "off", "--no-gateway", "--public-ip4", "127.0.0.1"];
      // The relay's own variables reach it: IPv4 alone, whose port is taken.
      expect(await upCommand(argv, io, { WARDLINE_RELAY_LISTEN6: "off" })).toBe(1);
      expect(io.out).toBe("");
      expect(logLines(io).find((l) => l.component === "relay" && l.msg === "cannot start")).toBeDefined();
      expect(logLines(io).find((l) => l.component === "up" && l.level === "error")).toMatchObject({ msg: "cannot start the relay" });
      expect(logLines(io).at(-1)).toMatchObject({ component: "up", msg: "stopped" });
    } finally {
      busy.close();
    }
  });

  it("a token file others may read is refused, not used: exit 1 naming the fix, and the portal closed again", { timeout: 60_000 }, async () => {
    const dataDir = join(scratch, "loose-token");
    const argv = ["--data-dir", dataDir, "--port", "0", "--relay-port", "0", "--relay-http", "off", "--no-gateway", "--public-ip4", "127.0.0.1", "--log-format", "json"];
    const first = startUp(argv);
    await until("the summary", () => (first.io.out.includes("Stop it with") ? first.io.out : undefined), 60_000, () => first.io.err);
    expect(await first.stop()).toBe(0);
    const file = join(dataDir, "tokens", "client.token");
    await chmod(file, 0o644);
    const io = captureIo();
    expect(await upCommand(argv, io, {})).toBe(1);
    expect(io.out).toBe("");
    expect(io.err).toContain(`chmod 600 ${file}`);
    expect(logLines(io).at(-1)).toMatchObject({ component: "up", msg: "stopped" });
  });
});

// --- 2: the gateway too, in a network namespace ---

function missingNamespaceTools(): string | undefined {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "not root (network namespaces and the gateway need it)";
  for (const [tool, pkg] of [["ip", "iproute2"], ["nft", "nftables"], ["curl", "curl"]] as const) {
    if (!onPath(tool)) return `${tool} is not installed (Debian: ${pkg})`;
  }
  if (!existsSync("/dev/net/tun")) return "/dev/net/tun is missing";
  const help = spawnSync(process.execPath, [WARDLINE_BIN, "up", "--help"], { encoding: "utf8", timeout: 20_000 });
  if (help.status !== 0 || !help.stdout.includes("--no-gateway")) return "`wardline up --help` fails from dist/: run npm run build:ts";
  return undefined;
}

const missing = missingNamespaceTools();
if (missing !== undefined && process.env.CI === "true") throw new Error(`wardline up cannot be tested with its gateway under CI: ${missing}`);
if (missing !== undefined) console.warn(`skipping wardline up with its gateway: ${missing}`);

describe.skipIf(missing !== undefined)("wardline up: with the gateway, in a network namespace", () => {
  const ns = `wl-up-${process.pid}`;
  const address = `10.79.${process.pid % 250}.1`;
  const processes: NamespaceProcess[] = [];
  let dir: string;
  /** net.ipv4.ip_forward in the fresh namespace, which the gateway must set back. */
  let forwarding: string;

  const inNs = (command: string, args: string[]): { status: number | null; stdout: string } => {
    const r = spawnSync("ip", ["netns", "exec", ns, command, ...args], { encoding: "utf8", timeout: 20_000 });
    return { status: r.status, stdout: r.stdout };
  };
  const curlOk = (url: string): boolean => inNs("curl", ["-sf", "--max-time", "2", "-o", "/dev/null", url]).status === 0;
  /** The API from inside the namespace, with the API token up stored (through a 0600 header file). */
  const nsApi = async <T>(path: string): Promise<T> => {
    const header = join(dir, "api.header");
    await writeFile(header, `authorization: Bearer ${await readToken(join(dir, "data"), "api")}\n`, { mode: 0o600 });
    const r = inNs("curl", ["-sf", "--max-time", "5", "-H", `@${header}`, `http://127.0.0.1:8080${path}`]);
    if (r.status !== 0) throw new Error(`GET ${path} failed (curl ${r.status})`);
    return JSON.parse(r.stdout) as T;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "wardline-up-ns-"));
    execFileSync("ip", ["netns", "add", ns]);
    execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
    // A non-loopback address for the relay to announce.
    execFileSync("ip", ["-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"]);
    execFileSync("ip", ["-n", ns, "addr", "add", `${address}/24`, "dev", "eth0"]);
    // Both ends up: an interface without carrier has no address as far as node's networkInterfaces() goes.
    for (const end of ["eth0", "eth1"]) execFileSync("ip", ["-n", ns, "link", "set", end, "up"]);
    forwarding = inNs("sysctl", ["-n", "net.ipv4.ip_forward"]).stdout.trim();
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop(3000)));
    spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** `wardline up` with default ports and addresses, in the namespace; resolves once the portal, relay and gateway are ready. */
  async function start(): Promise<{ proc: NamespaceProcess; out: () => string }> {
    const child = spawn("ip", ["netns", "exec", ns, process.execPath, WARDLINE_BIN, "up", "--data-dir", join(dir, "data"), "--log-format", "json"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("WARDLINE_") && key !== "DATABASE_URL")),
    });
    const proc = new NamespaceProcess("wardline up", child);
    processes.push(proc);
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => void (out += chunk.toString()));
    const ready = (url: string) => (): true | undefined => {
      if (!proc.running) throw new Error(`wardline up exited: ${proc.diagnostics()}`);
      return curlOk(url) ? true : undefined;
    };
    await until("/api/health", ready("http://127.0.0.1:8080/api/health"), 60_000, () => proc.diagnostics());
    await until("the relay's /readyz", ready("http://127.0.0.1:9478/readyz"), 30_000, () => proc.diagnostics());
    await until("the gateway's /readyz", ready("http://127.0.0.1:9479/readyz"), 30_000, () => proc.diagnostics());
    await until("the summary", () => (out.includes("Stop it with") ? true : undefined), 10_000, () => proc.diagnostics());
    return { proc, out: () => out };
  }

  /** SIGTERM; the exit status once it has exited. */
  async function stop(proc: NamespaceProcess): Promise<number | null> {
    proc.child.kill("SIGTERM");
    const timer = setTimeout(() => proc.child.kill("SIGKILL"), 15_000);
    const code = await proc.exited;
    clearTimeout(timer);
    return code;
  }

  it("runs portal, relay and gateway; the gateway goes online in site default; SIGTERM restores the host; a second start reuses the data dir", { timeout: 180_000 }, async () => {
    const first = await start();
    const dataDir = join(dir, "data");
    const state = await readState(dataDir);
    const s1 = summary(first.out());
    expect(s1.text).toMatch(/gateway +running in site "default"/);
    expect(s1.text).toContain(`relay     ${address}:3478`);

    const gateways = await nsApi<{ data: { id: string; site_id: string; last_seen_at: string | null }[] }>(`/api/devices?kind=gateway&site_id=${state.siteId}`);
    expect(gateways.data).toHaveLength(1);
    expect(gateways.data[0]!.last_seen_at).not.toBeNull();
    expect(inNs("nft", ["list", "table", "inet", "wardline_gateway"]).status).toBe(0);
    expect(inNs("sysctl", ["-n", "net.ipv4.ip_forward"]).stdout.trim()).toBe("1");
    expect(inNs("ip", ["link", "show", "wl-gateway"]).status).toBe(0);

    expect(await stop(first.proc)).toBe(0);
    expect(inNs("nft", ["list", "table", "inet", "wardline_gateway"]).status).not.toBe(0);
    expect(inNs("sysctl", ["-n", "net.ipv4.ip_forward"]).stdout.trim()).toBe(forwarding);
    expect(inNs("ip", ["link", "show", "wl-gateway"]).status).not.toBe(0);
    const relayId = parsePortalToken(await readToken(dataDir, "relay"))!.id;
    expect(await relayEndpoints(dataDir)).toEqual([{ relay_id: relayId, ipv4: address, port: 3478 }]);

    const second = await start();
    const s2 = summary(second.out());
    expect(s2.clientToken).toBe(s1.clientToken);
    expect(s2.password).toBeUndefined();
    expect(await readState(dataDir)).toEqual(state);
    const sites = await nsApi<{ data: { id: string }[] }>("/api/sites");
    expect(sites.data.map((s) => s.id)).toEqual([state.siteId]);
    const again = await nsApi<{ data: { id: string; last_seen_at: string | null }[] }>(`/api/devices?kind=gateway&site_id=${state.siteId}`);
    expect(again.data.map((d) => d.id)).toEqual([gateways.data[0]!.id]);
    for (const kind of ["gateway", "relay", "client", "api"]) {
      expect((await nsApi<{ data: unknown[] }>(`/api/tokens?kind=${kind}`)).data, kind).toHaveLength(1);
    }
    expect(await stop(second.proc)).toBe(0);
    expect(inNs("nft", ["list", "table", "inet", "wardline_gateway"]).status).not.toBe(0);
  });
});
