// Which of the host's addresses a client or gateway offers as ICE host candidates.
//
// Every non-loopback IPv4 address, except those on layer-3 tunnel interfaces: our own TUN device,
// and any other VPN's (a TUN or WireGuard device, IP-in-IP, SIT, GRE). A host candidate there
// makes a path *through* that other tunnel: ICE ranks host pairs first, so two hosts that share
// another VPN would carry all our traffic encrypted twice, at its speed, and lose it when it goes
// down. Tailscale and Firezone keep their candidates off such interfaces for the same reason.
// Interfaces whose link type cannot be read (no /sys) are kept. PPP keeps its addresses: it is
// the uplink of a DSL or mobile host, not a tunnel.

import { readFileSync } from "node:fs";
import { networkInterfaces, type NetworkInterfaceInfo } from "node:os";

/** Link types (ARPHRD_*, linux/if_arp.h) of layer-3 tunnels: no host candidates on these. */
export const TUNNEL_LINK_TYPES: ReadonlySet<number> = new Set([
  65534, // ARPHRD_NONE: TUN devices, WireGuard
  768, // ARPHRD_TUNNEL: IP-in-IP
  769, // ARPHRD_TUNNEL6
  776, // ARPHRD_SIT
  778, // ARPHRD_IPGRE
  823, // ARPHRD_IP6GRE
]);

/** An interface's link type from /sys/class/net, or undefined when it cannot be read. */
export function linkType(name: string): number | undefined {
  try {
    const value = Number.parseInt(readFileSync(`/sys/class/net/${name}/type`, "utf8").trim(), 10);
    return Number.isInteger(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The IPv4 addresses to offer as host candidates, sorted: from `interfaces` (os.networkInterfaces()
 * by default), without loopback, our own device `ownDevice`, or an interface `typeOf` names a tunnel.
 */
export function candidateAddresses(
  ownDevice: string,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
  typeOf: (name: string) => number | undefined = linkType,
): string[] {
  const found: string[] = [];
  for (const [name, list] of Object.entries(interfaces)) {
    if (name === ownDevice) continue;
    const addresses = (list ?? []).filter((info) => !info.internal && info.family === "IPv4");
    if (addresses.length === 0) continue;
    const type = typeOf(name);
    if (type !== undefined && TUNNEL_LINK_TYPES.has(type)) continue;
    for (const info of addresses) found.push(info.address);
  }
  return found.sort();
}
