// Our userspace API socket (daemons/io/uapi-socket.ts over daemons/proto/wireguard/uapi.ts) driven by
// the real `wg` tool from wireguard-tools, exactly as `wg` drives wireguard-go: set a device and its
// peers, show them back, remove a peer, read counters we supply.
//
// Needs root (the socket lives in /var/run/wireguard) and `wg`; skips with the reason otherwise, and
// fails under CI=true.

import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveUapi, type UapiServer } from "../../daemons/io/uapi-socket.js";
import { clampPrivateKey, publicKey } from "../../daemons/proto/wireguard/crypto.js";
import { WireGuardConfig, toHex, type PeerCounters } from "../../daemons/proto/wireguard/uapi.js";

function missingTool(): string | undefined {
  if (process.getuid?.() !== 0) return "not root (/var/run/wireguard needs it)";
  try {
    execFileSync("sh", ["-c", "command -v wg"], { stdio: "ignore" });
  } catch {
    return "wg is not installed (Debian: wireguard-tools)";
  }
  return undefined;
}
const missing = missingTool();
if (missing !== undefined && process.env.CI === "true") throw new Error(`wg interop cannot run under CI: ${missing}`);
if (missing !== undefined) console.warn(`skipping wg interop: ${missing}`);

const IFACE = `wlu${process.pid % 100000}`;
const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");
// Asynchronous: our socket is served by this very process, so a synchronous call would deadlock.
const wg = (...args: string[]): Promise<string> =>
  new Promise((resolve, reject) =>
    execFile("wg", args, { encoding: "utf8", timeout: 5000 }, (error, stdout, stderr) => (error ? reject(new Error(`wg ${args.join(" ")}: ${stderr || error.message}`)) : resolve(stdout))),
  );

describe.skipIf(missing !== undefined)("the real wg tool against our UAPI socket", () => {
  const config = new WireGuardConfig();
  const counters = new Map<string, PeerCounters>();
  let server: UapiServer;
  let dir: string;
  const priv = clampPrivateKey(new Uint8Array(randomBytes(32)));
  const peerA = publicKey(clampPrivateKey(new Uint8Array(randomBytes(32))));
  const peerB = publicKey(clampPrivateKey(new Uint8Array(randomBytes(32))));
  const psk = new Uint8Array(randomBytes(32));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "wl-uapi-"));
    server = await serveUapi(IFACE, { config, counters: (id) => counters.get(id) });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("wg set configures the device and its peers; wg show dump reads them back", async () => {
    writeFileSync(join(dir, "key"), b64(priv) + "\n", { mode: 0o600 });
    writeFileSync(join(dir, "psk"), b64(psk) + "\n", { mode: 0o600 });
    await wg("set", IFACE, "private-key", join(dir, "key"), "listen-port", "51999", "fwmark", "0x1234",
      "peer", b64(peerA), "preshared-key", join(dir, "psk"), "endpoint", "192.0.2.7:51820",
      "persistent-keepalive", "25", "allowed-ips", "10.1.2.3/8,fd00:1::5/64",
      "peer", b64(peerB), "endpoint", "[2001:db8::1]:4500", "allowed-ips", "192.168.0.0/16");
    expect(config.privateKey && toHex(config.privateKey)).toBe(toHex(priv));
    expect(config.listenPort).toBe(51999);
    expect(config.fwmark).toBe(0x1234);
    counters.set(toHex(peerA), { lastHandshakeUnixNanos: 1_764_000_000_123_000_000n, txBytes: 4096n, rxBytes: 8192n });

    const dump = (await wg("show", IFACE, "dump")).trim().split("\n").map((l) => l.split("\t"));
    expect(dump[0]).toEqual([b64(priv), b64(publicKey(priv)), "51999", "0x1234"]);
    expect(dump[1]).toEqual([b64(peerA), b64(psk), "192.0.2.7:51820", "10.0.0.0/8,fd00:1::/64", "1764000000", "8192", "4096", "25"]);
    expect(dump[2]).toEqual([b64(peerB), "(none)", "[2001:db8::1]:4500", "192.168.0.0/16", "0", "0", "0", "off"]);
  });

  it("an allowed IP moves to the peer it is given to last; peers are removed; showconf is complete", async () => {
    await wg("set", IFACE, "peer", b64(peerB), "allowed-ips", "192.168.0.0/16,10.0.0.0/8");
    const ips = (await wg("show", IFACE, "allowed-ips")).trim().split("\n").map((l) => l.split("\t"));
    expect(ips).toEqual([[b64(peerA), "fd00:1::/64"], [b64(peerB), "192.168.0.0/16 10.0.0.0/8"]]);
    await wg("set", IFACE, "peer", b64(peerA), "remove");
    expect((await wg("show", IFACE, "peers")).trim()).toBe(b64(peerB));
    const conf = await wg("showconf", IFACE);
    expect(conf).toContain(`PrivateKey = ${b64(priv)}`);
    expect(conf).toContain("ListenPort = 51999");
    expect(conf).toContain(`PublicKey = ${b64(peerB)}`);
    expect(conf).toContain("AllowedIPs = 192.168.0.0/16, 10.0.0.0/8");
  });

  it("a request wg refuses to send is refused by us too: a bad set leaves the device unchanged", async () => {
    const before = config.formatGet(() => undefined);
    const { connect } = await import("node:net");
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(server.path, () => s.write("set=1\nlisten_port=70000\n\n"));
      let out = "";
      s.on("data", (d) => {
        out += d;
        if (out.endsWith("\n\n")) {
          s.end();
          resolve(out);
        }
      });
      s.on("error", reject);
    });
    expect(reply).toBe("errno=-22\n\n");
    expect(config.formatGet(() => undefined)).toBe(before);
  });

  it("a second server for the same interface is refused while the first answers", async () => {
    await expect(serveUapi(IFACE, { config, counters: () => undefined })).rejects.toThrow(/in use/);
  });
});
