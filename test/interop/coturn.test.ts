// Our relay (`wardline relay`) against coturn's own test tools: turnutils_uclient as the TURN client
// (shared-secret credentials, as coturn's --use-auth-secret) and turnutils_peer as the peer that
// echoes what it gets. Everything runs in a network namespace of its own with a veth pair inside it:
// the relay listens on 198.18.0.1 and the peer on 198.18.0.2 (RFC 2544's benchmarking range, which
// the relay does not count as loopback or private, so no exception is needed).
//
// 1. Channel mode (-c: ChannelBind, then ChannelData both ways through the engine's forwarding table).
// 2. Indication mode (-s: Send and Data indications, the relay's slow path).
// 3. Several clients at once; every message comes back (zero loss at this moderate load).
// 4. /metrics counts what was relayed.
//
// Needs root, ip(8), coturn's turnutils and a built `wardline`; skips with the reason otherwise, and
// fails under CI=true.

import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WARDLINE_BIN } from "../../bench/netns.js";

const NS = `wl-turn-${process.pid}`;
const RELAY = "198.18.0.1";
const PEER = "198.18.0.2";
const PORT = 3478;
const PEER_PORT = 3480;
const HTTP = `${RELAY}:9478`;
const SECRET = "interop-secret";

function missingTools(): string | undefined {
  if (process.getuid?.() !== 0) return "not root (network namespaces need it)";
  for (const tool of ["ip", "turnutils_uclient", "turnutils_peer"]) {
    if (spawnSync("sh", ["-c", 'command -v "$1"', "sh", tool], { stdio: "ignore" }).status !== 0) {
      return `${tool} is not installed (Debian: ${tool === "ip" ? "iproute2" : "coturn"})`;
    }
  }
  if (spawnSync(process.execPath, [WARDLINE_BIN, "relay", "--help"], { stdio: "ignore" }).status !== 0) return "`wardline relay --help` fails: run npm run build";
  return undefined;
}

const missing = missingTools();
if (missing !== undefined && process.env.CI === "true") throw new Error(`coturn interop cannot run under CI: ${missing}`);
if (missing !== undefined) console.warn(`skipping coturn interop: ${missing}`);

const ip = (...args: string[]): void => {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.trim()}`);
};

function inNs(command: string, args: string[], timeoutMs = 60_000): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile("ip", ["netns", "exec", NS, command, ...args], { encoding: "utf8", timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
      resolve({ stdout, stderr, code: error ? ((error as { code?: number }).code ?? 1) : 0 }),
    );
  });
}

interface UclientResult {
  sent: number;
  received: number;
  lost: number;
  output: string;
}

/**
 * Runs turnutils_uclient against our relay as user (a credential id: the relay's quota of
 * allocations is per id, and uclient leaves its allocations to expire); its totals come from its
 * last lines.
 */
async function uclient(user: string, flags: string[]): Promise<UclientResult> {
  const { stdout, stderr } = await inNs("turnutils_uclient", ["-W", SECRET, "-u", user, "-e", PEER, "-r", String(PEER_PORT), "-p", String(PORT), ...flags, RELAY]);
  const output = stdout + stderr;
  const totals = /tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/m.exec(output.split("\n").filter((l) => /start_mclient: tot_send_msgs=/.test(l)).pop() ?? "");
  const lost = /Total lost packets (\d+)/.exec(output);
  if (totals === null || lost === null) throw new Error(`turnutils_uclient gave no totals:\n${output.slice(-3000)}`);
  return { sent: Number(totals[1]), received: Number(totals[2]), lost: Number(lost[1]), output };
}

describe.skipIf(missing !== undefined)("our relay with coturn's turnutils_uclient and turnutils_peer", () => {
  const children: ChildProcess[] = [];
  let relayLog = "";

  beforeAll(async () => {
    ip("netns", "add", NS);
    ip("-n", NS, "link", "set", "lo", "up");
    ip("-n", NS, "link", "add", "wlr0", "type", "veth", "peer", "name", "wlr1");
    ip("-n", NS, "addr", "add", `${RELAY}/24`, "dev", "wlr0");
    ip("-n", NS, "addr", "add", `${PEER}/24`, "dev", "wlr1");
    ip("-n", NS, "link", "set", "wlr0", "up");
    ip("-n", NS, "link", "set", "wlr1", "up");
    const relay = spawn("ip", ["netns", "exec", NS, process.execPath, WARDLINE_BIN, "relay", "--secret", SECRET, "--listen4", RELAY, "--listen6", "off", "--public-ip4", RELAY, "--port", String(PORT), "--ports", "50000-50999", "--max-allocations", "64", "--http", HTTP], { stdio: ["ignore", "ignore", "pipe"] });
    children.push(relay);
    const ready = new Promise<void>((resolve, reject) => {
      relay.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
        relayLog += chunk;
        if (relayLog.includes('"msg":"relaying"')) resolve();
      });
      relay.once("exit", (code) => reject(new Error(`relay exited with ${code}:\n${relayLog}`)));
      setTimeout(() => reject(new Error(`relay not ready in 15 s:\n${relayLog}`)), 15_000);
    });
    children.push(spawn("ip", ["netns", "exec", NS, "turnutils_peer", "-L", PEER, "-p", String(PEER_PORT)], { stdio: "ignore" }));
    await ready;
  }, 30_000);

  afterAll(async () => {
    for (const child of children) child.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    spawnSync("ip", ["netns", "del", NS]);
  });

  it("channel mode: allocation, permission, channel binding and ChannelData both ways, no loss", async () => {
    const r = await uclient("channels", ["-c", "-n", "200", "-l", "200", "-z", "5"]);
    expect(r.sent, r.output.slice(-2000)).toBe(200);
    expect(r.received).toBe(200);
    expect(r.lost).toBe(0);
  }, 60_000);

  it("indication mode: Send and Data indications, no loss", async () => {
    const r = await uclient("indications", ["-s", "-c", "-n", "100", "-l", "120", "-z", "5"]);
    expect(r.sent, r.output.slice(-2000)).toBe(100);
    expect(r.received).toBe(100);
    expect(r.lost).toBe(0);
  }, 60_000);

  it("eight clients at once, channel mode, no loss", async () => {
    const r = await uclient("many", ["-c", "-m", "8", "-n", "100", "-l", "100", "-z", "5"]);
    expect(r.sent, r.output.slice(-2000)).toBe(800);
    expect(r.received).toBe(800);
    expect(r.lost).toBe(0);
  }, 60_000);

  it("/metrics counts the relayed packets; /healthz and /readyz answer", async () => {
    const fetchIn = async (path: string): Promise<string> => {
      const { stdout, code, stderr } = await inNs(process.execPath, ["-e", `fetch("http://${HTTP}${path}").then(async (r) => console.log(r.status + "\\n" + (await r.text())))`]);
      if (code !== 0) throw new Error(`fetch ${path}: ${stderr}`);
      return stdout;
    };
    expect(await fetchIn("/healthz")).toMatch(/^200\n/);
    expect(await fetchIn("/readyz")).toMatch(/^200\n/);
    const metrics = await fetchIn("/metrics");
    const value = (name: string): number => Number(new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\d+)$`, "m").exec(metrics)?.[1] ?? NaN);
    expect(value('wardline_relay_packets_total{direction="client_to_peer"}'), metrics).toBeGreaterThanOrEqual(1000);
    expect(value('wardline_relay_packets_total{direction="peer_to_client"}')).toBeGreaterThanOrEqual(1000);
    expect(value("wardline_relay_requests_total")).toBeGreaterThan(0);
  }, 30_000);
});
