// The client's and the gateway's host changes (daemons/io/host-network.ts), made for real with ip(8),
// sysctl and nft inside a throwaway network namespace, and undone: routes diffed and removed, the
// namespace's resolv.conf (/etc/netns/<ns>/resolv.conf, what `ip netns exec` shows as
// /etc/resolv.conf) rewritten and restored byte for byte, a crashed run's DNS recovered, forwarding
// and the masquerade table set and taken back.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { missingTopologyTools } from "../../bench/topology.js";
import { ClientHostNetwork, GatewayHostNetwork, type Exec } from "../../daemons/io/host-network.js";

const missing = missingTopologyTools();
if (missing !== undefined && process.env.CI === "true") throw new Error(`the host-network tests cannot run under CI: ${missing}`);
if (missing !== undefined) console.warn(`skipping the host-network tests: ${missing}`);

const DEVICE = "wltun0";
const ORIGINAL = "# the host's own\nnameserver 192.0.2.53\nsearch example.net\n";
let made = 0;
let ns = "";
let stateDir = "";
let netnsEtc = "";

const exec: Exec = (command, args) => {
  try {
    return Promise.resolve(execFileSync("ip", ["netns", "exec", ns, command, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }));
  } catch (error) {
    return Promise.reject(new Error(`${command} ${args.join(" ")}: ${String((error as { stderr?: string }).stderr ?? error)}`));
  }
};
const inNs = (...args: string[]): string => execFileSync("ip", ["netns", "exec", ns, ...args], { encoding: "utf8" });

beforeEach(() => {
  if (missing !== undefined) return;
  ns = `wlhost-${process.pid}-${made++}`;
  execFileSync("ip", ["netns", "add", ns]);
  // A persistent TUN device stands in for the daemon's own (which lives as long as its process).
  inNs("ip", "tuntap", "add", "dev", DEVICE, "mode", "tun");
  netnsEtc = `/etc/netns/${ns}`;
  mkdirSync(netnsEtc, { recursive: true });
  writeFileSync(join(netnsEtc, "resolv.conf"), ORIGINAL);
  stateDir = mkdtempSync(join(tmpdir(), "wl-state-"));
});

afterEach(() => {
  if (missing !== undefined) return;
  execFileSync("ip", ["netns", "del", ns]);
  rmSync(netnsEtc, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
});

/** The device's routes but the kernel's own (an address's host route, link-local). */
const routes = (): string[] => [...inNs("ip", "-4", "route", "show", "dev", DEVICE).split("\n"), ...inNs("ip", "-6", "route", "show", "dev", DEVICE).split("\n")]
  .filter((line) => line !== "" && !line.includes("proto kernel"))
  .map((line) => line.split(" ")[0]!)
  .sort();

describe.skipIf(missing !== undefined)("host network changes, made and undone in a namespace", () => {
  it("client: addresses, routes as a diff, DNS rewritten and restored byte for byte", async () => {
    const client = new ClientHostNetwork({ device: DEVICE, stateDir, resolvConf: join(netnsEtc, "resolv.conf"), exec });
    await client.configure({ addresses: ["100.64.0.2/32", "fd00:2021:1111::2/128"], mtu: 1280 });
    expect(inNs("ip", "-o", "addr", "show", "dev", DEVICE)).toMatch(/100\.64\.0\.2\/32[\s\S]*fd00:2021:1111::2\/128/);
    expect(inNs("ip", "link", "show", "dev", DEVICE)).toMatch(/mtu 1280/);

    await client.setRoutes(["10.20.0.0/16", "100.96.0.0/11", "100.100.111.0/24", "fd00:2021:1111:8000::/107"]);
    expect(routes()).toEqual(["10.20.0.0/16", "100.100.111.0/24", "100.96.0.0/11", "fd00:2021:1111:8000::/107"]);
    await client.setRoutes(["10.20.0.0/16", "100.96.0.0/11", "172.16.5.0/24"]);
    expect(routes()).toEqual(["10.20.0.0/16", "100.96.0.0/11", "172.16.5.0/24"]);

    await client.setDns(["100.100.111.1", "fd00:2021:1111:8000:100:100:111:1"], "corp.example");
    const written = inNs("cat", "/etc/resolv.conf");
    expect(written).toContain("nameserver 100.100.111.1\nnameserver fd00:2021:1111:8000:100:100:111:1\nsearch corp.example\n");
    // A second call (new sentinels) keeps the first original.
    await client.setDns(["100.100.111.2"]);
    expect(readFileSync(join(stateDir, "resolv.conf.before-wardline"), "utf8")).toBe(ORIGINAL);

    await client.restore();
    expect(routes()).toEqual([]);
    expect(inNs("cat", "/etc/resolv.conf")).toBe(ORIGINAL);
    expect(existsSync(join(stateDir, "resolv.conf.before-wardline"))).toBe(false);
  });

  it("client: a run that died without restoring has its DNS recovered by the next", async () => {
    const crashed = new ClientHostNetwork({ device: DEVICE, stateDir, resolvConf: join(netnsEtc, "resolv.conf"), exec });
    await crashed.setDns(["100.100.111.1"]);
    expect(inNs("cat", "/etc/resolv.conf")).not.toBe(ORIGINAL);
    const next = new ClientHostNetwork({ device: DEVICE, stateDir, resolvConf: join(netnsEtc, "resolv.conf"), exec });
    expect(await next.recover()).toBe(true);
    expect(inNs("cat", "/etc/resolv.conf")).toBe(ORIGINAL);
    expect(await next.recover()).toBe(false);
  });

  it("client: with no resolv.conf before, restore leaves none", async () => {
    rmSync(join(netnsEtc, "resolv.conf"));
    const client = new ClientHostNetwork({ device: DEVICE, stateDir, resolvConf: join(netnsEtc, "resolv.conf"), exec });
    await client.setDns(["100.100.111.1"]);
    expect(readFileSync(join(netnsEtc, "resolv.conf"), "utf8")).toContain("nameserver 100.100.111.1");
    await client.restore();
    expect(existsSync(join(netnsEtc, "resolv.conf"))).toBe(false);
  });

  it("gateway: forwarding on and a masquerade table, idempotently; restore sets both back", async () => {
    const gateway = new GatewayHostNetwork({ device: DEVICE, exec });
    await gateway.configure({ addresses: ["100.64.0.1/32"], mtu: 1280 });
    expect(inNs("sysctl", "-n", "net.ipv4.ip_forward").trim()).toBe("0");
    await gateway.forward();
    await gateway.forward();
    expect(inNs("sysctl", "-n", "net.ipv4.ip_forward").trim()).toBe("1");
    expect(inNs("sysctl", "-n", "net.ipv6.conf.all.forwarding").trim()).toBe("1");
    const ruleset = inNs("nft", "list", "ruleset");
    expect(ruleset.match(/table inet wardline_gateway/g)).toHaveLength(1);
    expect(ruleset).toMatch(/ip saddr 100\.64\.0\.0\/11 oifname != "wltun0" masquerade/);
    await gateway.restore();
    expect(inNs("sysctl", "-n", "net.ipv4.ip_forward").trim()).toBe("0");
    expect(inNs("sysctl", "-n", "net.ipv6.conf.all.forwarding").trim()).toBe("0");
    expect(inNs("nft", "list", "ruleset")).not.toMatch(/wardline_gateway/);
  });
});
