// Our TURN client (TurnAllocation, daemons/proto/turn/client.ts) on real UDP sockets against two
// servers, with one body of tests for both: coturn's turnserver, and our own relay (`wardline relay`),
// which proves our client and our relay together. Both take coturn's shared-secret credentials
// (use-auth-secret), minted here with mintCredentials.
//
// Everything runs in a network namespace of its own with a veth pair inside it: the server listens
// on 198.18.0.1 and turnutils_peer, which echoes what it gets, on 198.18.0.2 (RFC 2544's benchmarking
// range, which our relay's peer policy does not count as private). The test process cannot bind in
// the namespace, so the client runs in turn-client-driver.ts there, commanded and reporting in JSON
// lines. The servers run one after the other, on the same port.
//
// Per server:
// 1. Allocate: the relayed address is on the server, the reflexive address is the client's socket.
// 2. Send indications: a permission for the peer, then seeded random payloads out in Send
//    indications and every echo back in a Data indication.
// 3. ChannelData: a channel bound to the peer, then payloads out and every echo back in ChannelData.
// 4. Release: the server deletes the allocation; no answer failed integrity or was malformed.
//
// Needs root, ip(8) and ss(8), coturn's turnserver and turnutils_peer, and for our relay a built
// `wardline` (npm run build); skips with the reason otherwise, and fails under CI=true.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { repoRoot } from "../../bench/harness.js";
import { WARDLINE_BIN } from "../../bench/netns.js";
import type { TransportAddress } from "../../daemons/proto/stun/attributes.js";
import { CHANNEL_NUMBER_MAX, CHANNEL_NUMBER_MIN } from "../../daemons/proto/stun/constants.js";
import { mintCredentials } from "../../daemons/proto/stun/credentials.js";
import { reportSeedOnFailure, rng } from "../support/prng.js";
import type { DriverCommand, DriverConfig, DriverEvent } from "./turn-client-driver.js";

const NS = `wl-turnc-${process.pid}`;
const SERVER = "198.18.0.1";
const PEER: TransportAddress = { family: 4, address: "198.18.0.2", port: 3480 };
const PORT = 3478;
const SECRET = "interop-secret";
const REALM = "wardline";
/** Payloads per path; sent at once, which loopback carries without loss. */
const MESSAGES = 50;
/** What a process printed is kept up to this many characters, the latest. */
const OUTPUT_KEPT = 64 * 1024;
const DRIVER = fileURLToPath(new URL("./turn-client-driver.ts", import.meta.url));

interface ServerUnderTest {
  name: string;
  /** For credential ids and seed labels. */
  key: string;
  /** Why it cannot run here, or undefined. */
  missing: string | undefined;
  command: (scratch: string) => string[];
  /** The relay port range it hands out from. */
  relayPorts: [number, number];
}

const onPath = (tool: string): boolean => spawnSync("sh", ["-c", 'command -v "$1"', "sh", tool], { stdio: "ignore" }).status === 0;

function missingCommon(): string | undefined {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "not root (network namespaces need it)";
  for (const [tool, pkg] of [["ip", "iproute2"], ["ss", "iproute2"], ["turnutils_peer", "coturn"]]) {
    if (!onPath(tool!)) return `${tool} is not installed (Debian: ${pkg})`;
  }
  if (!existsSync(join(repoRoot(), "node_modules", "tsx", "package.json"))) return "tsx (a devDependency) is not installed: run npm install";
  return undefined;
}

const common = missingCommon();
const SERVERS: ServerUnderTest[] = [
  {
    name: "coturn's turnserver",
    key: "coturn",
    missing: common ?? (onPath("turnserver") ? undefined : "turnserver is not installed (Debian: coturn)"),
    command: (scratch) => [
      "turnserver", "--use-auth-secret", `--static-auth-secret=${SECRET}`, `--realm=${REALM}`, `--listening-ip=${SERVER}`, `--relay-ip=${SERVER}`,
      `--listening-port=${PORT}`, "--min-port=49152", "--max-port=65535", "--no-tcp", "--no-tls", "--no-dtls", "--no-cli", "--log-file=stdout",
      // Not /var/run/turnserver.pid, which another coturn on this host may own.
      `--pidfile=${join(scratch, "turnserver.pid")}`,
    ],
    relayPorts: [49152, 65535],
  },
  {
    name: "our relay (wardline relay)",
    key: "wardline",
    missing: common ?? (spawnSync(process.execPath, [WARDLINE_BIN, "relay", "--help"], { stdio: "ignore" }).status === 0 ? undefined : "`wardline relay --help` fails: run npm run build"),
    command: () => [
      process.execPath, WARDLINE_BIN, "relay", "--secret", SECRET, "--realm", REALM, "--listen4", SERVER, "--listen6", "off", "--public-ip4", SERVER,
      "--port", String(PORT), "--ports", "50000-50999", "--http", "off",
    ],
    relayPorts: [50000, 50999],
  },
];

for (const server of SERVERS) {
  if (server.missing === undefined) continue;
  if (process.env.CI === "true") throw new Error(`TURN client interop with ${server.name} cannot run under CI: ${server.missing}`);
  console.warn(`skipping TURN client interop with ${server.name}: ${server.missing}`);
}

const ip = (...args: string[]): void => {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.trim()}`);
};

/** A process in the namespace, with what it printed kept for failure messages. */
class NsProcess {
  readonly child: ChildProcess;
  output = "";
  private readonly exited: Promise<void>;

  /** With commanded, stdin is a pipe and stdout is left to the caller; otherwise both go to output. */
  constructor(command: string[], commanded = false) {
    // `ip netns exec` execs the command, so the PID is the command's own.
    this.child = spawn("ip", ["netns", "exec", NS, ...command], { cwd: repoRoot(), stdio: [commanded ? "pipe" : "ignore", "pipe", "pipe"] });
    const keep = (chunk: string): void => void (this.output = (this.output + chunk).slice(-OUTPUT_KEPT));
    this.child.stderr!.setEncoding("utf8").on("data", keep);
    if (!commanded) this.child.stdout!.setEncoding("utf8").on("data", keep);
    this.exited = new Promise((resolve) => this.child.once("exit", () => resolve()));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM, then SIGKILL if it lingers; resolves once it is gone (so its port is free again). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    const lingering = setTimeout(() => this.child.kill("SIGKILL"), 3_000);
    await this.exited;
    clearTimeout(lingering);
  }
}

/** Waits until something in the namespace listens on address:port over UDP. */
async function udpListening(address: string, port: number, owner: NsProcess, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const r = spawnSync("ip", ["netns", "exec", NS, "ss", "-Hnlu"], { encoding: "utf8" });
    if (r.stdout.split("\n").some((line) => line.includes(` ${address}:${port} `))) return;
    if (!owner.running) throw new Error(`${what} exited with ${owner.child.exitCode ?? owner.child.signalCode}:\n${owner.output.slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what} does not listen on ${address}:${port} after 15 s:\n${owner.output.slice(-3000)}`);
}

/** The client in the namespace: commands in, events out, every event kept. */
class Driver extends NsProcess {
  readonly events: DriverEvent[] = [];
  private readonly listeners = new Set<() => void>();
  /** Its stdout has ended: every event it wrote is in events. */
  private closed = false;

  constructor(config: DriverConfig, private readonly serverLog: () => string) {
    super([process.execPath, "--import", "tsx", DRIVER, JSON.stringify(config)], true);
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      try {
        this.events.push(JSON.parse(line) as DriverEvent);
      } catch {
        this.events.push({ type: "error", message: `not JSON on the driver's stdout: ${line}` });
      }
      for (const listener of this.listeners) listener();
    });
    this.child.once("close", () => {
      this.closed = true;
      for (const listener of this.listeners) listener();
    });
  }

  /** Where the next event will be, for waiting on what a command brings and nothing before it. */
  mark(): number {
    return this.events.length;
  }

  command(command: DriverCommand): void {
    this.child.stdin!.write(`${JSON.stringify(command)}\n`);
  }

  /**
   * The first `count` events from `from` on that match, once there are that many; rejects early on a
   * failed or error event, or when the driver exits, and after timeoutMs.
   */
  collect<T extends DriverEvent>(what: string, from: number, match: (e: DriverEvent) => e is T, count = 1, timeoutMs = 10_000): Promise<T[]> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const since = this.events.slice(from);
        const found = since.filter(match);
        const bad = since.find((e) => (e.type === "failed" || e.type === "error") && !match(e));
        if (found.length >= count) finish(() => resolve(found.slice(0, count)));
        else if (bad !== undefined) finish(() => reject(this.failure(`${what}: ${JSON.stringify(bad)}`)));
        else if (this.closed) finish(() => reject(this.failure(`${what}: the driver exited with ${this.child.exitCode ?? this.child.signalCode}`)));
      };
      const timer = setTimeout(() => finish(() => reject(this.failure(`${what}: ${this.events.slice(from).filter(match).length} of ${count} after ${timeoutMs} ms`))), timeoutMs);
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        settle();
      };
      this.listeners.add(check);
      check();
    });
  }

  private failure(message: string): Error {
    const recent = this.events.slice(-12).map((e) => JSON.stringify(e).slice(0, 300)).join("\n");
    return new Error(`${message}\nlast events:\n${recent}\ndriver stderr:\n${this.output.slice(-2000)}\nserver log:\n${this.serverLog().slice(-2000)}`);
  }
}

const is = <K extends DriverEvent["type"]>(type: K) => (e: DriverEvent): e is Extract<DriverEvent, { type: K }> => e.type === type;

/** Sends payloads to the peer and waits for as many data events; returns them. */
async function echo(driver: Driver, payloads: readonly Uint8Array[], what: string): Promise<Extract<DriverEvent, { type: "data" }>[]> {
  const from = driver.mark();
  for (const payload of payloads) driver.command({ op: "send", peer: PEER, data: Buffer.from(payload).toString("hex") });
  return driver.collect(what, from, is("data"), payloads.length);
}

async function stats(driver: Driver): Promise<Extract<DriverEvent, { type: "stats" }>> {
  const from = driver.mark();
  driver.command({ op: "stats" });
  return (await driver.collect("stats", from, is("stats")))[0]!;
}

const randomPayloads = (label: string): { payloads: Uint8Array[]; where: string } => {
  const r = rng(label);
  return { payloads: Array.from({ length: MESSAGES }, () => r.bytes(r.int(1, 1200))), where: r.where() };
};

const sortedHex = (items: readonly (Uint8Array | string)[]): string[] => items.map((x) => (typeof x === "string" ? x : Buffer.from(x).toString("hex"))).sort();

function clientAgainst(server: ServerUnderTest): void {
  describe.skipIf(server.missing !== undefined)(`our TURN client against ${server.name}`, () => {
    let scratch = "";
    let serverProcess: NsProcess | undefined;
    let driver: Driver;
    let local: TransportAddress;
    /** Whether the first test got its allocation; the others build on it. */
    let allocated = false;
    const needsAllocation = (): void => expect(allocated, "no allocation: see the first test's failure").toBe(true);

    beforeAll(async () => {
      scratch = mkdtempSync(join(tmpdir(), "wardline-turn-client-"));
      serverProcess = new NsProcess(server.command(scratch));
      await udpListening(SERVER, PORT, serverProcess, server.name);
      const credentials = mintCredentials(SECRET, `client-${server.key}`, Math.floor(Date.now() / 1000) + 3600);
      driver = new Driver({ server: { family: 4, address: SERVER, port: PORT }, ...credentials, bind: SERVER }, () => serverProcess?.output ?? "");
      local = (await driver.collect("driver start", 0, is("ready"), 1, 20_000))[0]!.local;
    }, 40_000);

    afterAll(async () => {
      await driver?.stop();
      await serverProcess?.stop();
      if (scratch !== "") rmSync(scratch, { recursive: true, force: true });
    });

    beforeEach(reportSeedOnFailure);

    it("allocates: the relayed address is the server's, the reflexive address our socket's", async () => {
      const from = driver.mark();
      driver.command({ op: "allocate" });
      const [event] = await driver.collect("allocate", from, is("allocated"));
      allocated = true;
      expect(event!.relayed).toHaveLength(1);
      const relayed = event!.relayed[0]!;
      expect(relayed.family).toBe(4);
      expect(relayed.address).toBe(SERVER);
      expect(relayed.port).toBeGreaterThanOrEqual(server.relayPorts[0]);
      expect(relayed.port).toBeLessThanOrEqual(server.relayPorts[1]);
      expect(event!.mapped).toEqual(local);
      expect(event!.lifetime).toBeGreaterThan(0);
    });

    it("relays to the peer and back through Send and Data indications once a permission is installed", async () => {
      needsAllocation();
      const from = driver.mark();
      driver.command({ op: "permission", peer: PEER });
      const [permission] = await driver.collect("create permission", from, is("permission"));
      expect(permission!.peer).toBe(PEER.address);

      const { payloads, where } = randomPayloads(`${server.key}/indications`);
      const before = await stats(driver);
      const echoes = await echo(driver, payloads, "echoes through indications");
      const after = await stats(driver);
      for (const e of echoes) {
        expect(e.peer, where).toEqual(PEER);
        expect(e.framing, where).toBe("stun");
      }
      expect(sortedHex(echoes.map((e) => e.data)), where).toEqual(sortedHex(payloads));
      expect(after.sent.stun - before.sent.stun, where).toBeGreaterThanOrEqual(MESSAGES);
      expect(after.received.stun - before.received.stun, where).toBeGreaterThanOrEqual(MESSAGES);
      expect(after.sent["channel-data"] - before.sent["channel-data"], where).toBe(0);
      expect(after.received["channel-data"] - before.received["channel-data"], where).toBe(0);
    });

    it("binds a channel to the peer and relays to it and back in ChannelData", async () => {
      needsAllocation();
      const from = driver.mark();
      driver.command({ op: "channel", peer: PEER });
      const [picked] = await driver.collect("bind channel", from, is("channel-number"));
      const [bound] = await driver.collect("channel bind", from, is("channel"));
      expect(bound!.channel).toBe(picked!.channel);
      expect(bound!.channel).toBeGreaterThanOrEqual(CHANNEL_NUMBER_MIN);
      expect(bound!.channel).toBeLessThanOrEqual(CHANNEL_NUMBER_MAX);
      expect(bound!.peer).toEqual(PEER);

      const { payloads, where } = randomPayloads(`${server.key}/channel`);
      const before = await stats(driver);
      const echoes = await echo(driver, payloads, "echoes through the channel");
      const after = await stats(driver);
      for (const e of echoes) {
        expect(e.peer, where).toEqual(PEER);
        expect(e.framing, where).toBe("channel-data");
      }
      expect(sortedHex(echoes.map((e) => e.data)), where).toEqual(sortedHex(payloads));
      expect(after.sent["channel-data"] - before.sent["channel-data"], where).toBe(MESSAGES);
      expect(after.received["channel-data"] - before.received["channel-data"], where).toBe(MESSAGES);
    });

    it("releases the allocation; nothing from the server was malformed, forged or foreign", async () => {
      needsAllocation();
      const from = driver.mark();
      driver.command({ op: "release" });
      await driver.collect("release", from, is("released"));
      const { dropped } = await stats(driver);
      // `unexpected` may count a late answer to a retransmitted request; the rest would be a bug.
      expect(dropped).toMatchObject({ foreign: 0, malformed: 0, integrity: 0 });
    });
  });
}

describe.skipIf(SERVERS.every((s) => s.missing !== undefined))("TURN client interop", () => {
  let peer: NsProcess | undefined;

  beforeAll(async () => {
    ip("netns", "add", NS);
    ip("-n", NS, "link", "set", "lo", "up");
    ip("-n", NS, "link", "add", "wlc0", "type", "veth", "peer", "name", "wlc1");
    ip("-n", NS, "addr", "add", `${SERVER}/24`, "dev", "wlc0");
    ip("-n", NS, "addr", "add", `${PEER.address}/24`, "dev", "wlc1");
    ip("-n", NS, "link", "set", "wlc0", "up");
    ip("-n", NS, "link", "set", "wlc1", "up");
    peer = new NsProcess(["turnutils_peer", "-L", PEER.address, "-p", String(PEER.port)]);
    await udpListening(PEER.address, PEER.port, peer, "turnutils_peer");
  }, 30_000);

  afterAll(async () => {
    await peer?.stop();
    spawnSync("ip", ["netns", "del", NS]);
  });

  for (const server of SERVERS) clientAgainst(server);
});
