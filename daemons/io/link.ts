// The kernel side of an interface that the TUN file descriptor cannot set: MTU, addresses, link
// state and routes, through ip(8) from iproute2, as wg-quick does it.

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Prefix } from "../proto/wireguard/uapi.js";
import { formatPrefix } from "../proto/wireguard/uapi.js";

const run = promisify(execFile);

export interface LinkSettings {
  mtu: number;
  /** Addresses of the interface itself (wg-quick's Address). */
  addresses?: readonly Prefix[];
  /** Bring the link up (wireguard-go leaves it down until wg-quick or the user does it). */
  up?: boolean;
  /** Prefixes routed into the interface (the peers' allowed IPs). */
  routes?: readonly Prefix[];
}

/** A route left out, and why; the caller reports it. */
export interface SkippedRoute {
  prefix: string;
  reason: string;
}

async function ip(args: string[]): Promise<void> {
  try {
    await run("ip", args);
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? "").trim();
    throw new Error(`ip ${args.join(" ")}: ${stderr || (error as Error).message}`);
  }
}

/** Applies settings to interface name; returns the routes it did not add. */
export async function configureLink(name: string, settings: LinkSettings): Promise<SkippedRoute[]> {
  await ip(["link", "set", "dev", name, "mtu", String(settings.mtu)]);
  for (const address of settings.addresses ?? []) {
    await ip([`-${address.family}`, "address", "add", formatPrefix(address), "dev", name]);
  }
  if (!settings.up) return [];
  await ip(["link", "set", "dev", name, "up"]);
  const skipped: SkippedRoute[] = [];
  const seen = new Set<string>();
  for (const route of settings.routes ?? []) {
    const text = formatPrefix(route);
    if (seen.has(text)) continue;
    seen.add(text);
    if (route.length === 0) {
      skipped.push({ prefix: text, reason: "a default route through the tunnel needs policy routing, which `wardline wg` does not set up" });
      continue;
    }
    await ip([`-${route.family}`, "route", "replace", text, "dev", name]);
  }
  return skipped;
}
