// Our Noise handshake (daemons/proto/wireguard) and our engine's transport against the reference
// userspace implementation, wireguard-go, over real UDP: wireguard-go runs in a network namespace of
// its own, joined to this one by a veth pair, with its TUN addressed 10.77.0.2 and us as its peer at
// 10.77.0.1. No TUN of ours is involved: the test builds and reads the inner IP packets itself.
//
// 1. wireguard-go initiates (a ping inside its namespace triggers it); we answer, open its echo
//    request with the engine, and seal the echo reply, so the ping in the namespace succeeds.
// 2. We initiate; wireguard-go answers; our sealed echo request gets its kernel's echo reply back.
//
// Needs root, ip(8), wireguard-go and wg; skips with the reason otherwise, and fails under CI=true.

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine, TransportStatus } from "../../daemons/engine/index.js";
import { CookieChecker, CookieJar } from "../../daemons/proto/wireguard/cookie.js";
import { clampPrivateKey } from "../../daemons/proto/wireguard/crypto.js";
import { consumeInitiation, createResponse, HandshakePeer, StaticIdentity, type TransportKeys } from "../../daemons/proto/wireguard/noise.js";
import { tai64n } from "../../daemons/proto/wireguard/tai64n.js";

const id = process.pid % 10000;
const NS = `wl-wgo-${id}`;
const VETH_HOST = `wlh${id}`;
const VETH_NS = `wln${id}`;
const WG_IF = `wlg${id}`;
const SUBNET = 16 + (process.pid % 200);
const HOST_ADDR = `10.231.${SUBNET}.1`;
const NS_ADDR = `10.231.${SUBNET}.2`;
const WG_PORT = 51820;
const OUR_TUNNEL_IP = [10, 77, 0, 1];
const THEIR_TUNNEL_IP = [10, 77, 0, 2];

function missingPeer(): string | undefined {
  if (process.getuid?.() !== 0) return "not root (network namespaces need it)";
  for (const tool of ["ip", "wireguard-go", "wg", "ping"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      return `${tool} is not installed (Debian: iproute2, wireguard-go, wireguard-tools, iputils-ping)`;
    }
  }
  if (!existsSync("/dev/net/tun")) return "/dev/net/tun is missing";
  return undefined;
}

const missing = missingPeer();
if (missing !== undefined && process.env.CI === "true") {
  throw new Error(`wireguard-go interop cannot run under CI: ${missing}`);
}
if (missing !== undefined) console.warn(`skipping wireguard-go interop: ${missing}`);

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: "utf8" });

// --- Inner packets: IPv4 + ICMP echo, built and checked here ---

function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function icmpEcho(type: 0 | 8, src: number[], dst: number[], ident: number, seq: number, payload: Uint8Array): Uint8Array {
  const packet = new Uint8Array(20 + 8 + payload.length);
  const v = new DataView(packet.buffer);
  v.setUint8(0, 0x45);
  v.setUint16(2, packet.length);
  v.setUint8(8, 64);
  v.setUint8(9, 1);
  packet.set(src, 12);
  packet.set(dst, 16);
  v.setUint16(10, checksum(packet.subarray(0, 20)));
  v.setUint8(20, type);
  v.setUint16(24, ident);
  v.setUint16(26, seq);
  packet.set(payload, 28);
  v.setUint16(22, checksum(packet.subarray(20)));
  return packet;
}

interface Echo {
  type: number;
  src: string;
  dst: string;
  ident: number;
  seq: number;
  payload: Uint8Array;
}

function parseEcho(plaintext: Uint8Array): Echo | undefined {
  if (plaintext.length < 28 || plaintext[0] !== 0x45 || plaintext[9] !== 1) return undefined;
  const v = new DataView(plaintext.buffer, plaintext.byteOffset, plaintext.length);
  const total = v.getUint16(2);
  if (total > plaintext.length || checksum(plaintext.subarray(0, 20)) !== 0 || checksum(plaintext.subarray(20, total)) !== 0) return undefined;
  return {
    type: plaintext[20]!,
    src: plaintext.subarray(12, 16).join("."),
    dst: plaintext.subarray(16, 20).join("."),
    ident: v.getUint16(24),
    seq: v.getUint16(26),
    payload: plaintext.slice(28, total),
  };
}

// --- A minimal driver for the test: one socket, a queue of datagrams ---

class Datagrams {
  private readonly queue: { msg: Buffer; from: RemoteInfo }[] = [];
  private waiter: (() => void) | undefined;
  constructor(readonly socket: Socket) {
    socket.on("message", (msg, from) => {
      this.queue.push({ msg, from });
      this.waiter?.();
    });
  }

  async next(what: string, timeoutMs = 5000): Promise<{ msg: Uint8Array; from: RemoteInfo }> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no datagram from wireguard-go within ${timeoutMs} ms: waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    const { msg, from } = this.queue.shift()!;
    return { msg: new Uint8Array(msg), from };
  }

  send(bytes: Uint8Array, port: number, address: string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(bytes, port, address, (e) => (e ? reject(e) : resolve())));
  }
}

const sourceBytes = (from: RemoteInfo): Uint8Array => {
  const out = new Uint8Array(6);
  out.set(from.address.split(".").map(Number), 0);
  new DataView(out.buffer).setUint16(4, from.port);
  return out;
};

describe.skipIf(missing !== undefined)("interop with wireguard-go (handshake + transport, real UDP)", () => {
  let wg: ChildProcess | undefined;
  let dir: string;
  let udp: Datagrams;
  const engine = Engine.create({ maxSessions: 16 });
  const ourIdentity = new StaticIdentity(clampPrivateKey(randomBytes(32)));
  const theirPrivate = clampPrivateKey(randomBytes(32));
  const theirIdentity = new StaticIdentity(theirPrivate);
  const peer = new HandshakePeer(ourIdentity, theirIdentity.publicKey);
  const jar = new CookieJar(theirIdentity.publicKey);
  const checker = new CookieChecker(ourIdentity.publicKey, (n) => new Uint8Array(randomBytes(n)));
  const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "wl-wgo-"));
    sh("ip", ["netns", "add", NS]);
    sh("ip", ["link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS]);
    sh("ip", ["link", "set", VETH_NS, "netns", NS]);
    sh("ip", ["addr", "add", `${HOST_ADDR}/30`, "dev", VETH_HOST]);
    sh("ip", ["link", "set", VETH_HOST, "up"]);
    sh("ip", ["-n", NS, "addr", "add", `${NS_ADDR}/30`, "dev", VETH_NS]);
    sh("ip", ["-n", NS, "link", "set", VETH_NS, "up"]);
    sh("ip", ["-n", NS, "link", "set", "lo", "up"]);

    const socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, HOST_ADDR, resolve));
    udp = new Datagrams(socket);

    wg = spawn("ip", ["netns", "exec", NS, "wireguard-go", "-f", WG_IF], { stdio: "ignore", env: { ...process.env, LOG_LEVEL: "error" } });
    const sock = `/var/run/wireguard/${WG_IF}.sock`;
    for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
    if (!existsSync(sock)) throw new Error(`wireguard-go did not create ${sock}`);
    const keyFile = join(dir, "key");
    writeFileSync(keyFile, b64(theirPrivate) + "\n", { mode: 0o600 });
    sh("ip", [
      "netns", "exec", NS, "wg", "set", WG_IF, "private-key", keyFile, "listen-port", String(WG_PORT),
      "peer", b64(ourIdentity.publicKey), "allowed-ips", `${OUR_TUNNEL_IP.join(".")}/32`,
      "endpoint", `${HOST_ADDR}:${socket.address().port}`,
    ]);
    sh("ip", ["-n", NS, "addr", "add", `${THEIR_TUNNEL_IP.join(".")}/24`, "dev", WG_IF]);
    sh("ip", ["-n", NS, "link", "set", WG_IF, "up"]);
  }, 20_000);

  afterAll(() => {
    udp?.socket.close();
    if (wg?.pid !== undefined) wg.kill("SIGTERM");
    for (const args of [["link", "del", VETH_HOST], ["netns", "del", NS]]) {
      try {
        sh("ip", args);
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** Seals one inner packet with the session in slot and sends it to wireguard-go. */
  async function sendInner(slot: number, inner: Uint8Array): Promise<void> {
    engine.batch.reset();
    engine.batch.addPlaintext(slot, inner);
    expect(engine.batch.seal()).toBe(1);
    await udp.send(engine.batch.packet(0).slice(), WG_PORT, NS_ADDR);
  }

  /** Waits for a transport packet and opens it: the inner packet and the slot that authenticated it. */
  async function receiveInner(what: string): Promise<{ plaintext: Uint8Array; slot: number }> {
    for (;;) {
      const { msg } = await udp.next(what);
      if (msg[0] !== 4) continue; // a retransmitted handshake message is not what we wait for
      engine.batch.reset();
      engine.batch.addPacket(msg);
      engine.batch.open();
      expect(TransportStatus[engine.batch.status(0)], what).toBe("Ok");
      return { plaintext: engine.batch.plaintext(0).slice(), slot: engine.batch.session(0) };
    }
  }

  it("answers wireguard-go's initiation; its ping through the tunnel gets our reply", async () => {
    const ping = spawn("ip", ["netns", "exec", NS, "ping", "-c", "1", "-W", "5", OUR_TUNNEL_IP.join(".")], { stdio: "ignore" });
    const pingDone = new Promise<number | null>((resolve) => ping.on("exit", resolve));
    try {
      const { msg: initiation, from } = await udp.next("a handshake initiation");
      expect(initiation.length).toBe(148);
      expect(checker.check(initiation, sourceBytes(from), false, performance.now())).toBe("ok");
      const consumed = consumeInitiation(ourIdentity, initiation, (pub) => (Buffer.compare(pub, theirIdentity.publicKey) === 0 ? peer : undefined), performance.now());
      if (!consumed.ok) throw new Error(`our responder refused wireguard-go's initiation: ${consumed.reason}`);
      const response = createResponse(consumed.value, 0x1000 + id, clampPrivateKey(randomBytes(32)));
      if (!response.ok) throw new Error(`createResponse: ${response.reason}`);
      jar.writeMacs(response.value.message, performance.now());
      const slot = engine.sessions.install(response.value.keys);
      await udp.send(response.value.message, from.port, from.address);

      const { plaintext } = await receiveInner("the echo request");
      const request = parseEcho(plaintext);
      expect(request, "a valid IPv4 ICMP packet").toBeDefined();
      expect(request!.type).toBe(8);
      expect(request!.src).toBe(THEIR_TUNNEL_IP.join("."));
      await sendInner(slot, icmpEcho(0, OUR_TUNNEL_IP, THEIR_TUNNEL_IP, request!.ident, request!.seq, request!.payload));
      expect(await pingDone, "ping inside wireguard-go's namespace").toBe(0);
      engine.sessions.drop(slot);
    } finally {
      ping.kill();
    }
  }, 20_000);

  it("initiates to wireguard-go; our echo request gets its kernel's echo reply", async () => {
    const initiation = peer.createInitiation(0x2000 + id, clampPrivateKey(randomBytes(32)), tai64n(BigInt(Date.now()) * 1_000_000n));
    if (!initiation.ok) throw new Error(`createInitiation: ${initiation.reason}`);
    jar.writeMacs(initiation.value, performance.now());
    await udp.send(initiation.value, WG_PORT, NS_ADDR);
    let keys: TransportKeys | undefined;
    while (keys === undefined) {
      const { msg, from } = await udp.next("the handshake response");
      if (msg[0] !== 2) continue;
      expect(msg.length).toBe(92);
      expect(checker.check(msg, sourceBytes(from), false, performance.now())).toBe("ok");
      const result = peer.consumeResponse(msg);
      if (!result.ok) throw new Error(`our initiator refused wireguard-go's response: ${result.reason}`);
      keys = result.value;
    }
    const slot = engine.sessions.install(keys);
    const payload = new Uint8Array(randomBytes(56));
    await sendInner(slot, icmpEcho(8, OUR_TUNNEL_IP, THEIR_TUNNEL_IP, 0x5157, 1, payload));
    const { plaintext, slot: from } = await receiveInner("the echo reply");
    expect(from).toBe(slot);
    const reply = parseEcho(plaintext);
    expect(reply, "a valid IPv4 ICMP packet").toBeDefined();
    expect(reply).toMatchObject({ type: 0, src: THEIR_TUNNEL_IP.join("."), dst: OUR_TUNNEL_IP.join("."), ident: 0x5157, seq: 1 });
    expect(Buffer.from(reply!.payload).equals(Buffer.from(payload))).toBe(true);
    // wireguard-go's own view: the handshake and the bytes it moved.
    const dump = sh("ip", ["netns", "exec", NS, "wg", "show", WG_IF, "dump"]);
    const peerLine = dump.trim().split("\n")[1]!.split("\t");
    expect(peerLine[0]).toBe(b64(ourIdentity.publicKey));
    expect(Number(peerLine[4]), "latest handshake").toBeGreaterThan(0);
    expect(Number(peerLine[5]), "bytes received from us").toBeGreaterThan(0);
    engine.sessions.drop(slot);
  }, 20_000);
});
