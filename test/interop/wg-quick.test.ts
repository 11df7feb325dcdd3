// wg-quick (Debian wireguard-tools) driving our interface in place of wireguard-go, through
// WG_QUICK_USERSPACE_IMPLEMENTATION=bin/wardline-wg: `wg-quick up` starts our daemon (which returns
// once ready), configures it with `wg setconf`, addresses it and routes it with `ip`; a ping crosses
// to a wireguard-go peer in the other namespace; `wg-quick down` deletes the link, and our daemon,
// like wireguard-go, notices and exits, leaving no socket behind.
//
// Needs root, ip, wg, wg-quick, wireguard-go and a built `wardline wg`; skips with the reason
// otherwise, and fails under CI=true.

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKeyPair, missingPrerequisites, NamespacePair, UAPI_DIR } from "../../bench/netns.js";

const WARDLINE_WG = fileURLToPath(new URL("../../bin/wardline-wg", import.meta.url));

function missingWgQuick(): string | undefined {
  const missing = missingPrerequisites(["wireguard-go", "ours"]);
  if (missing !== undefined) return missing;
  if (spawnSync("sh", ["-c", "command -v wg-quick"], { stdio: "ignore" }).status !== 0) return "wg-quick is not installed (Debian: wireguard-tools)";
  return undefined;
}

const missing = missingWgQuick();
if (missing !== undefined && process.env.CI === "true") throw new Error(`wg-quick interop cannot run under CI: ${missing}`);
if (missing !== undefined) console.warn(`skipping wg-quick interop: ${missing}`);

/** PIDs of our daemon for iface (it runs detached: wg-quick started it, not the test). */
function daemonPids(iface: string): number[] {
  const out = spawnSync("pgrep", ["-f", `wg ${iface} --foreground`], { encoding: "utf8" }).stdout;
  return out.split("\n").filter(Boolean).map(Number);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(missing !== undefined)("wg-quick with WG_QUICK_USERSPACE_IMPLEMENTATION=bin/wardline-wg", () => {
  let pair: NamespacePair;
  beforeAll(() => {
    pair = NamespacePair.create("q");
  });
  afterAll(async () => {
    for (const pid of daemonPids(pair.a.iface)) process.kill(pid, "SIGKILL");
    await pair?.destroy();
  });

  it("up configures, addresses and routes our interface and a ping crosses; down stops our daemon", async () => {
    const { a, b } = pair;
    const ours = generateKeyPair();
    const theirs = generateKeyPair();
    const net = `10.233.${pair.subnet}`;
    await pair.startPeer(b, "wireguard-go", {
      privateKey: theirs.privateKey,
      listenPort: 51820,
      address: `${net}.2/24`,
      peers: [{ publicKey: ours.publicKey, allowedIps: [`${net}.1/32`] }],
    });
    // wg-quick names the interface after the file.
    const file = join(pair.dir, `${a.iface}.conf`);
    writeFileSync(
      file,
      [
        "[Interface]",
        `PrivateKey = ${ours.privateKey}`,
        "ListenPort = 51821",
        `Address = ${net}.1/24`,
        "MTU = 1380",
        "",
        "[Peer]",
        `PublicKey = ${theirs.publicKey}`,
        `AllowedIPs = ${net}.2/32, 10.234.${pair.subnet}.0/24`,
        `Endpoint = ${b.address}:51820`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );

    const env = ["env", `WG_QUICK_USERSPACE_IMPLEMENTATION=${WARDLINE_WG}`, "wg-quick"];
    await pair.exec(a, env[0]!, [...env.slice(1), "up", file]);
    const pids = daemonPids(a.iface);
    expect(pids, "our daemon runs, detached").toHaveLength(1);
    expect(existsSync(join(UAPI_DIR, `${a.iface}.sock`))).toBe(true);

    const link = await pair.exec(a, "ip", ["addr", "show", "dev", a.iface]);
    expect(link).toContain("mtu 1380");
    expect(link).toContain(`inet ${net}.1/24`);
    expect(await pair.exec(a, "ip", ["route", "show", "dev", a.iface])).toContain(`10.234.${pair.subnet}.0/24`);

    const ping = await pair.exec(a, "ping", ["-c", "3", "-i", "0.2", "-W", "2", `${net}.2`]);
    expect(ping).toMatch(/3 received/);
    const dump = (await pair.exec(a, "wg", ["show", a.iface, "dump"])).trim().split("\n").map((l) => l.split("\t"));
    expect(dump[0]![2], "listen port").toBe("51821");
    expect(dump[1]![0]).toBe(theirs.publicKey);
    expect(Number(dump[1]![4]), "latest handshake").toBeGreaterThan(0);

    await pair.exec(a, env[0]!, [...env.slice(1), "down", file]);
    const deadline = Date.now() + 5000;
    while (daemonPids(a.iface).length > 0 && Date.now() < deadline) await sleep(50);
    expect(daemonPids(a.iface), "our daemon exits when wg-quick deletes the link").toEqual([]);
    expect(existsSync(join(UAPI_DIR, `${a.iface}.sock`)), "and removes its socket").toBe(false);
    expect(() => execFileSync("ip", ["-n", a.name, "link", "show", a.iface], { stdio: "ignore" })).toThrow();
  }, 60_000);

  it("in the background, as wireguard-go, it returns once ready, and a start-up error reaches our stderr and exit status", async () => {
    const { a } = pair;
    const start = () => spawnSync("ip", ["netns", "exec", a.name, WARDLINE_WG, a.iface], { encoding: "utf8", timeout: 20_000 });
    const first = start();
    expect(first.status, first.stderr).toBe(0);
    expect(daemonPids(a.iface)).toHaveLength(1);
    const dump = await pair.exec(a, "wg", ["show", a.iface, "dump"]);
    expect(dump.split("\t")[0], "unconfigured: no private key").toBe("(none)");
    const second = start();
    expect(second.status).toBe(1);
    expect(second.stderr).toContain(`wardline wg: cannot create ${a.iface}`);
    expect(second.stderr).toContain("an interface of that name exists");
    expect(daemonPids(a.iface), "the first one still runs, alone").toHaveLength(1);
    execFileSync("ip", ["-n", a.name, "link", "del", a.iface]);
    const deadline = Date.now() + 5000;
    while (daemonPids(a.iface).length > 0 && Date.now() < deadline) await sleep(50);
    expect(daemonPids(a.iface)).toEqual([]);
  }, 60_000);
});
