// What the client and the gateway change on their host beyond the TUN device, and how each is undone:
// a daemon that stops, or one that crashed and starts again, leaves the host as it found it.
//
// Client (ClientHostNetwork):
//   1. configure: the TUN device's addresses and MTU, link up;
//   2. setRoutes: the resources' prefixes (and the DNS sentinels) into the device, applied as a diff
//      against what this run added, so an update touches only what changed;
//   3. setDns: the sentinel resolvers become the host's. With systemd-resolved managing
//      /etc/resolv.conf (the stub symlink) through resolvectl, on the device; otherwise
//      /etc/resolv.conf is rewritten, the original kept first in the state directory. A backup already
//      there is the original of a run that crashed, so it is never overwritten;
//   4. restore: routes removed, DNS reverted (resolvectl revert, or the backup written back and
//      deleted). recover() does the DNS half at start, for a run that died without restoring.
// Gateway (GatewayHostNetwork):
//   1. configure, as the client's;
//   2. forward: IPv4 and IPv6 forwarding on (the previous values remembered), and an nftables table
//      masquerading tunnel traffic (the device address plan) that leaves by any other interface, so
//      resources answer the gateway and the gateway needs no route back and no inbound port;
//   3. restore: the table deleted, forwarding set back.
// Every command goes through an Exec, so tests run the real commands inside a namespace.

import { execFile } from "node:child_process";
import { lstat, mkdir, mkdtemp, readFile, readlink, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** Runs a command and returns its stdout; rejects with its stderr. */
export type Exec = (command: string, args: string[]) => Promise<string>;

/** Runs commands on this host. */
export const hostExec: Exec = (command, args) =>
  new Promise((resolve, reject) =>
    execFile(command, args, { encoding: "utf8" }, (error, stdout, stderr) =>
      error ? reject(new Error(`${command} ${args.join(" ")}: ${stderr.trim() || error.message}`)) : resolve(stdout),
    ),
  );

/** The device tunnel address plan (DESIGN.md "Address plan"), whose traffic a gateway masquerades. */
export const TUNNEL_RANGES = { ipv4: "100.64.0.0/11", ipv6: "fd00:2021:1111::/107" } as const;
const SYSTEMD_STUB = /\/run\/systemd\/resolve\/(stub-)?resolv\.conf$/;
const BACKUP_NAME = "resolv.conf.before-wardline";
const NFT_TABLE = "wardline_gateway";

export interface DeviceSettings {
  /** Address with its prefix length, e.g. 100.64.0.2/32 and fd00:2021:1111::2/128. */
  addresses: readonly string[];
  mtu: number;
}

async function configureDevice(exec: Exec, device: string, settings: DeviceSettings): Promise<void> {
  await exec("ip", ["link", "set", "dev", device, "mtu", String(settings.mtu)]);
  for (const address of settings.addresses) await exec("ip", [address.includes(":") ? "-6" : "-4", "address", "replace", address, "dev", device]);
  await exec("ip", ["link", "set", "dev", device, "up"]);
}

export interface ClientHostOptions {
  /** The TUN device's name. */
  device: string;
  /** Where the resolv.conf backup lives (kept across a crash). */
  stateDir: string;
  /** Default /etc/resolv.conf. */
  resolvConf?: string;
  exec?: Exec;
}

/** The client's routes and DNS on its host, and their undoing. */
export class ClientHostNetwork {
  private readonly exec: Exec;
  private readonly resolvConf: string;
  private readonly routes = new Set<string>();
  private dns: "none" | "file" | "resolved" = "none";

  constructor(private readonly options: ClientHostOptions) {
    this.exec = options.exec ?? hostExec;
    this.resolvConf = options.resolvConf ?? "/etc/resolv.conf";
  }

  private get backup(): string {
    return join(this.options.stateDir, BACKUP_NAME);
  }

  configure(settings: DeviceSettings): Promise<void> {
    return configureDevice(this.exec, this.options.device, settings);
  }

  /** Makes the device's routes exactly `prefixes` (CIDR text); default routes are the caller's to leave out. */
  async setRoutes(prefixes: readonly string[]): Promise<void> {
    const wanted = new Set(prefixes);
    for (const prefix of [...this.routes]) {
      if (wanted.has(prefix)) continue;
      await this.exec("ip", [family(prefix), "route", "del", prefix, "dev", this.options.device]).catch(() => undefined);
      this.routes.delete(prefix);
    }
    for (const prefix of wanted) {
      if (this.routes.has(prefix)) continue;
      await this.exec("ip", [family(prefix), "route", "replace", prefix, "dev", this.options.device]);
      this.routes.add(prefix);
    }
  }

  /** The prefixes routed into the device by this run. */
  get routed(): string[] {
    return [...this.routes];
  }

  /** Makes `servers` (the sentinels) the host's resolvers; `searchDomain` too when given. */
  async setDns(servers: readonly string[], searchDomain?: string): Promise<void> {
    if (await this.usesResolved()) {
      await this.exec("resolvectl", ["dns", this.options.device, ...servers]);
      await this.exec("resolvectl", ["domain", this.options.device, ...(searchDomain ? [searchDomain] : []), "~."]);
      this.dns = "resolved";
      return;
    }
    await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 });
    if (!(await exists(this.backup))) {
      const original = await readFile(this.resolvConf).catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return undefined;
        throw error;
      });
      // No original: an empty backup says "there was none", and restore removes ours.
      await writeAtomically(this.backup, original ?? Buffer.alloc(0));
    }
    const lines = ["# Written by wardline client; the original is restored when it stops.", ...servers.map((s) => `nameserver ${s}`)];
    if (searchDomain) lines.push(`search ${searchDomain}`);
    // In place, not by rename: /etc/resolv.conf is often a bind mount (containers, `ip netns exec`).
    await writeFile(this.resolvConf, `${lines.join("\n")}\n`);
    this.dns = "file";
  }

  /** Undoes the DNS change of a run that died without restoring; true if there was one. */
  async recover(): Promise<boolean> {
    if (!(await exists(this.backup))) return false;
    await this.restoreFile();
    return true;
  }

  /** Removes this run's routes and reverts the DNS. */
  async restore(): Promise<void> {
    await this.setRoutes([]).catch(() => undefined);
    if (this.dns === "resolved") await this.exec("resolvectl", ["revert", this.options.device]).catch(() => undefined);
    else if (this.dns === "file") await this.restoreFile();
    this.dns = "none";
  }

  private async restoreFile(): Promise<void> {
    const original = await readFile(this.backup);
    if (original.length === 0) await rm(this.resolvConf, { force: true });
    else await writeFile(this.resolvConf, original);
    await rm(this.backup, { force: true });
  }

  private async usesResolved(): Promise<boolean> {
    const info = await lstat(this.resolvConf).catch(() => undefined);
    if (!info?.isSymbolicLink() || !SYSTEMD_STUB.test(await readlink(this.resolvConf))) return false;
    return this.exec("resolvectl", ["status"]).then(() => true, () => false);
  }
}

export interface GatewayHostOptions {
  device: string;
  exec?: Exec;
}

const FORWARDING = ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"] as const;

/** The gateway's forwarding and masquerading on its host, and their undoing. */
export class GatewayHostNetwork {
  private readonly exec: Exec;
  private readonly previous = new Map<string, string>();
  private table = false;

  constructor(private readonly options: GatewayHostOptions) {
    this.exec = options.exec ?? hostExec;
  }

  configure(settings: DeviceSettings): Promise<void> {
    return configureDevice(this.exec, this.options.device, settings);
  }

  /** Turns forwarding on and masquerades tunnel traffic leaving by other interfaces. */
  async forward(): Promise<void> {
    for (const key of FORWARDING) {
      const value = (await this.exec("sysctl", ["-n", key])).trim();
      if (!this.previous.has(key)) this.previous.set(key, value);
      if (value !== "1") await this.exec("sysctl", ["-qw", `${key}=1`]);
    }
    const device = JSON.stringify(this.options.device);
    // Deleting first makes this idempotent: a table a crashed run left is replaced, not doubled.
    await this.exec("nft", ["delete", "table", "inet", NFT_TABLE]).catch(() => undefined);
    await this.nft([
      `table inet ${NFT_TABLE} {`,
      "  chain postrouting {",
      "    type nat hook postrouting priority srcnat; policy accept;",
      `    ip saddr ${TUNNEL_RANGES.ipv4} oifname != ${device} masquerade`,
      `    ip6 saddr ${TUNNEL_RANGES.ipv6} oifname != ${device} masquerade`,
      "  }",
      "}",
    ].join("\n"));
    this.table = true;
  }

  /** Deletes the table and sets forwarding back as it was. */
  async restore(): Promise<void> {
    if (this.table) await this.exec("nft", ["delete", "table", "inet", NFT_TABLE]).catch(() => undefined);
    this.table = false;
    for (const [key, value] of this.previous) await this.exec("sysctl", ["-qw", `${key}=${value}`]).catch(() => undefined);
    this.previous.clear();
  }

  private async nft(ruleset: string): Promise<void> {
    // A ruleset goes in as one transaction from a file (the Exec passes no stdin).
    const dir = await mkdtemp(join(tmpdir(), "wardline-nft-"));
    const file = join(dir, "ruleset.nft");
    try {
      await writeFile(file, ruleset);
      await this.exec("nft", ["-f", file]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

function family(prefix: string): "-4" | "-6" {
  return prefix.includes(":") ? "-6" : "-4";
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}

/** Writes through a temporary file and a rename, so a crash never leaves half a file. */
async function writeAtomically(path: string, data: Buffer): Promise<void> {
  const temporary = join(dirname(path), `.${BACKUP_NAME}.${process.pid}.tmp`);
  await writeFile(temporary, data, { mode: 0o644 });
  await rename(temporary, path);
}
