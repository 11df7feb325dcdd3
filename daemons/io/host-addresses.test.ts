// Host candidate addresses: physical links and PPP are offered; our TUN device and other VPNs'
// tunnels are not (a path through another VPN would carry our traffic encrypted twice).

import { execFileSync } from "node:child_process";
import type { NetworkInterfaceInfo } from "node:os";
import { describe, expect, it } from "vitest";
import { candidateAddresses, linkType } from "./host-addresses.js";

const v4 = (address: string, internal = false): NetworkInterfaceInfo =>
  ({ address, netmask: "255.255.255.0", family: "IPv4", mac: "00:00:00:00:00:00", internal, cidr: `${address}/24` }) as NetworkInterfaceInfo;
const v6 = (address: string): NetworkInterfaceInfo =>
  ({ address, netmask: "ffff:ffff:ffff:ffff::", family: "IPv6", mac: "00:00:00:00:00:00", internal: false, cidr: `${address}/64`, scopeid: 0 }) as NetworkInterfaceInfo;

const interfaces = {
  lo: [v4("127.0.0.1", true)],
  eth0: [v4("192.168.1.20"), v6("fe80::1")],
  wlan0: [v4("10.0.0.5")],
  "wl-client": [v4("100.64.0.7")],
  wg0: [v4("10.77.0.1")],
  ppp0: [v4("203.0.113.9")],
  gre1: [v4("172.16.0.1")],
};
const types: Record<string, number> = { lo: 772, eth0: 1, wlan0: 1, "wl-client": 65534, wg0: 65534, ppp0: 512, gre1: 778 };

describe("host candidate addresses", () => {
  it("offers every non-loopback IPv4 address of the physical links and PPP, sorted", () => {
    expect(candidateAddresses("wl-client", interfaces, (n) => types[n])).toEqual(["10.0.0.5", "192.168.1.20", "203.0.113.9"]);
  });

  it("leaves out our own device even when its type cannot be read, and other VPNs' tunnels", () => {
    const found = candidateAddresses("wl-client", interfaces, (n) => (n === "wl-client" ? undefined : types[n]));
    expect(found).not.toContain("100.64.0.7");
    expect(found, "a WireGuard interface's address would make a path through that tunnel").not.toContain("10.77.0.1");
    expect(found).not.toContain("172.16.0.1");
  });

  it("keeps an interface whose link type cannot be read", () => {
    expect(candidateAddresses("wl-client", { eth9: [v4("192.0.2.1")] }, () => undefined)).toEqual(["192.0.2.1"]);
  });

  it("reads link types from /sys (loopback is 772), and a real TUN device as a tunnel", (ctx) => {
    let made: string | undefined;
    const name = `wlht${process.pid % 10000}`;
    try {
      execFileSync("ip", ["tuntap", "add", "dev", name, "mode", "tun"], { stdio: "ignore" });
      made = name;
    } catch (error) {
      const reason = `cannot create a TUN device here (needs root and /dev/net/tun): ${(error as Error).message}`;
      if (process.env.CI === "true") throw new Error(reason);
      console.log(`skipping: ${reason}`);
      ctx.skip();
      return;
    }
    try {
      expect(linkType("lo")).toBe(772);
      expect(linkType("no-such-interface-x")).toBeUndefined();
      expect(linkType(made)).toBe(65534);
      expect(candidateAddresses("other", { [made]: [v4("10.99.0.1")], lo: [v4("127.0.0.1", true)] })).toEqual([]);
    } finally {
      execFileSync("ip", ["link", "del", made], { stdio: "ignore" });
    }
  });
});
