// The end-to-end topology of issue 8 in network namespaces: an Internet (a bridge), a relay and a
// portal on it, and two sites behind NAT routers: the client's home network, and the gateway's
// network with the resource host. Real kernels forward and translate everything; the tests and
// `wardline bench e2e` put daemons and tools (curl, dig, iperf3) in the namespaces.
//
//                        wan: bridge, 198.51.100.0/24
//        ┌──────────────┬───────┴────────┬──────────────────┐
//     relay .10      portal .20   client router .1     gateway router .2
//                                        │ 192.168.10.0/24        │ 192.168.20.0/24
//                                   client .10          gateways .10, .11 …, resource .100
//
// 1. NAT: each router masquerades its network's traffic out of its WAN side (nftables). "easy" keeps
//    the inside port when it can (endpoint-independent mapping, so hole punching works); "hard" picks
//    a random port for every new destination (fully-random: a symmetric NAT, so only relays work).
//    Both filter inbound by conntrack: only answers to what went out come in, and unasked traffic to
//    the router is dropped, not answered.
// 2. Nothing reaches inside a site from the WAN: there is no route there, so a resource is reachable
//    only through a gateway.
// 3. Teardown: processes by PID (SIGTERM, then SIGKILL), then the namespaces, which take their
//    interfaces, bridges and nftables tables with them. Names carry the PID and a counter, so
//    concurrent runs never collide, and leftovers() finds what a crashed run left.

import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { describeFailure, NamespaceProcess } from "./netns.js";
import { onPath } from "./system.js";

export type NatKind = "easy" | "hard";

export interface AccessTopologyOptions {
  clientNat: NatKind;
  gatewayNat: NatKind;
  /** Gateways in the site (default 1). */
  gateways?: number;
}

/** One namespace and its address on its network. */
export interface Host {
  /** The namespace's name. */
  ns: string;
  /** What a failure message calls it. */
  role: string;
  address: string;
}

const WAN = "198.51.100";
const CLIENT_LAN = "192.168.10";
const SITE_LAN = "192.168.20";
const PREFIX = "wle2e";

/** The resource host's HTTP server: GET /blob is `bytes` of xorshift32 data, /blob.sha256 its hash. */
const HTTP_SCRIPT = `
const http = require("node:http");
const { createHash } = require("node:crypto");
const [port, size] = process.argv.slice(1).map(Number);
const blob = Buffer.alloc(size);
let x = 0x9e3779b9;
for (let i = 0; i + 4 <= size; i += 4) {
  x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
  blob.writeUInt32LE(x, i);
}
const sha256 = createHash("sha256").update(blob).digest("hex");
http.createServer((req, res) => {
  if (req.url === "/blob") res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size }).end(blob);
  else if (req.url === "/blob.sha256") res.writeHead(200, { "content-type": "text/plain" }).end(sha256 + "\\n");
  else res.writeHead(404).end();
}).listen(port, "0.0.0.0", () => console.log(JSON.stringify({ ready: true, sha256 })));
`;

/** Debian packages the topology needs, by command. */
export const TOPOLOGY_TOOLS: Record<string, string> = { ip: "iproute2", nft: "nftables", dnsmasq: "dnsmasq-base", dig: "bind9-dnsutils", curl: "curl" };

/** Why the topology cannot be built here, or undefined. */
export function missingTopologyTools(tools: Record<string, string> = {}): string | undefined {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "network namespaces need root";
  const missing = Object.entries({ ...TOPOLOGY_TOOLS, ...tools }).filter(([tool]) => !onPath(tool));
  if (missing.length > 0) return `missing ${missing.map(([tool, pkg]) => `${tool} (Debian package ${pkg})`).join(", ")}`;
  return undefined;
}

let built = 0;

/** The namespaces of one end-to-end topology; create() builds it, destroy() removes every trace. */
export class AccessTopology {
  readonly wan: Host;
  readonly relay: Host;
  readonly portal: Host;
  readonly clientRouter: Host;
  readonly gatewayRouter: Host;
  readonly client: Host;
  readonly gateways: Host[];
  readonly resource: Host;
  private readonly id: string;
  private readonly processes = new Set<NamespaceProcess>();
  private destroying: Promise<void> | undefined;
  private vethCount = 0;

  private constructor(readonly options: AccessTopologyOptions) {
    this.id = `${process.pid}-${built++}`;
    const host = (role: string, address: string): Host => ({ ns: `${PREFIX}-${this.id}-${role}`, role, address });
    this.wan = host("wan", "");
    this.relay = host("relay", `${WAN}.10`);
    this.portal = host("portal", `${WAN}.20`);
    this.clientRouter = host("crouter", `${WAN}.1`);
    this.gatewayRouter = host("grouter", `${WAN}.2`);
    this.client = host("client", `${CLIENT_LAN}.10`);
    this.gateways = Array.from({ length: options.gateways ?? 1 }, (_, i) => host(`gateway${i}`, `${SITE_LAN}.${10 + i}`));
    this.resource = host("resource", `${SITE_LAN}.100`);
  }

  /** Builds the topology; on failure removes what it made and throws naming the command that failed. */
  static create(options: AccessTopologyOptions): AccessTopology {
    const t = new AccessTopology(options);
    try {
      t.build();
    } catch (error) {
      t.removeNamespaces();
      throw error;
    }
    return t;
  }

  /** Every namespace of this topology. */
  get hosts(): Host[] {
    return [this.wan, this.relay, this.portal, this.clientRouter, this.gatewayRouter, this.client, ...this.gateways, this.resource];
  }

  /** The router's WAN address a site's traffic leaves from. */
  publicAddressOf(host: Host): string {
    if (host === this.client) return this.clientRouter.address;
    if (host === this.resource || this.gateways.includes(host)) return this.gatewayRouter.address;
    return host.address;
  }

  private build(): void {
    for (const h of this.hosts) {
      ip("netns", "add", h.ns);
      ip("-n", h.ns, "link", "set", "lo", "up");
    }
    ip("-n", this.wan.ns, "link", "add", "br0", "type", "bridge");
    ip("-n", this.wan.ns, "link", "set", "br0", "up");
    // The Internet: relay, portal and the routers' WAN sides on one bridge.
    for (const h of [this.relay, this.portal, this.clientRouter, this.gatewayRouter]) {
      const port = this.link(h, this.wan, "wan");
      ip("-n", h.ns, "addr", "add", `${h.address}/24`, "dev", "wan");
      ip("-n", this.wan.ns, "link", "set", port, "master", "br0");
    }
    this.site(this.clientRouter, CLIENT_LAN, [this.client], this.options.clientNat);
    this.site(this.gatewayRouter, SITE_LAN, [...this.gateways, this.resource], this.options.gatewayNat);
  }

  /** A LAN behind `router`: a bridge in the router, each host's default route through it, and NAT. */
  private site(router: Host, lan: string, hosts: Host[], nat: NatKind): void {
    ip("-n", router.ns, "link", "add", "lan", "type", "bridge");
    ip("-n", router.ns, "addr", "add", `${lan}.1/24`, "dev", "lan");
    ip("-n", router.ns, "link", "set", "lan", "up");
    for (const h of hosts) {
      const port = this.link(h, router, "eth0");
      ip("-n", h.ns, "addr", "add", `${h.address}/24`, "dev", "eth0");
      ip("-n", h.ns, "route", "add", "default", "via", `${lan}.1`);
      ip("-n", router.ns, "link", "set", port, "master", "lan");
    }
    this.runSync(router, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
    const masquerade = nat === "hard" ? "masquerade fully-random" : "masquerade";
    this.runSync(router, "nft", ["-f", "-"], [
      "table ip wardline_nat {",
      "  chain postrouting {",
      "    type nat hook postrouting priority srcnat; policy accept;",
      `    oifname "wan" ip saddr ${lan}.0/24 ${masquerade}`,
      "  }",
      "}",
      // Inbound: only answers to what went out (a NAT without port forwards lets nothing else in).
      "table ip wardline_filter {",
      "  chain forward {",
      "    type filter hook forward priority filter; policy drop;",
      `    iifname "lan" accept`,
      "    ct state established,related accept",
      "  }",
      // Unasked traffic to the router itself is dropped, as a home router does, not answered: an
      // answered (ICMP port unreachable) packet would leave a conntrack entry holding the very tuple a
      // hole punch from inside needs, and the punch would get another port.
      "  chain input {",
      "    type filter hook input priority filter; policy accept;",
      `    iifname "wan" ct state new drop`,
      "  }",
      "}",
    ].join("\n"));
  }

  /**
   * A veth pair: `name` inside `h`, and a port named after h's role inside `other`, returned. The
   * pair is made under names unique on the machine, then renamed in its namespaces.
   */
  private link(h: Host, other: Host, name: string): string {
    const n = this.vethCount++;
    const a = `wl${process.pid % 100000}x${n}a`;
    const b = `wl${process.pid % 100000}x${n}b`;
    ip("link", "add", a, "netns", h.ns, "type", "veth", "peer", "name", b, "netns", other.ns);
    const port = `p-${h.role}`.slice(0, 15);
    ip("-n", h.ns, "link", "set", a, "name", name);
    ip("-n", other.ns, "link", "set", b, "name", port);
    ip("-n", h.ns, "link", "set", name, "up");
    ip("-n", other.ns, "link", "set", port, "up");
    return port;
  }

  /** Runs a command in a namespace; returns stdout, throws with stderr. */
  runSync(h: Host, command: string, args: string[] = [], input?: string): string {
    try {
      return execFileSync("ip", ["netns", "exec", h.ns, command, ...args], { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
    } catch (error) {
      throw describeFailure([`(${h.role})`, command, ...args], error);
    }
  }

  /** Runs a command in a namespace without blocking this process; `input`, when given, is its stdin. */
  run(h: Host, command: string, args: string[] = [], timeoutMs = 30_000, input?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = execFile("ip", ["netns", "exec", h.ns, command, ...args], { encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
        error ? reject(new Error(`${[command, ...args].join(" ")} in ${h.role}: ${stderr.trim() || error.message}`)) : resolve(stdout),
      );
      if (input !== undefined) child.stdin?.end(input);
    });
  }

  /** Starts a long-running command in a namespace, tracked by PID until destroy(). */
  spawn(h: Host, command: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): NamespaceProcess {
    const child = spawn("ip", ["netns", "exec", h.ns, command, ...args], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } });
    const tracked = new NamespaceProcess(`${command} in ${h.role}`, child);
    this.processes.add(tracked);
    void tracked.exited.then(() => this.processes.delete(tracked));
    return tracked;
  }

  /** Makes `servers` the namespace's resolvers: `ip netns exec` shows /etc/netns/<ns>/resolv.conf as /etc/resolv.conf. */
  setResolvers(h: Host, servers: readonly string[]): void {
    const dir = `/etc/netns/${h.ns}`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/resolv.conf`, servers.map((s) => `nameserver ${s}\n`).join(""));
  }

  /**
   * A DNS server (dnsmasq) on the host's address answering for `zones`: each domain, and every name
   * under it, with its addresses (IPv4 and IPv6); every other name is NXDOMAIN. Resolves once it answers.
   */
  async startDns(h: Host, zones: Record<string, readonly string[]>): Promise<NamespaceProcess> {
    const args = ["--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces", `--listen-address=${h.address}`, "--port=53", "--pid-file=", "--user=root", "--log-facility=-"];
    for (const [domain, addresses] of Object.entries(zones)) for (const address of addresses) args.push(`--address=/${domain}/${address}`);
    const proc = this.spawn(h, "dnsmasq", args);
    const [domain] = Object.keys(zones);
    for (let i = 0; ; i++) {
      const answer = await this.run(h, "dig", ["+short", "+time=1", "+tries=1", `@${h.address}`, `probe.${domain}`]).catch(() => "");
      if (answer.trim() !== "") return proc;
      if (!proc.running || i === 50) throw new Error(`dnsmasq did not answer: ${proc.diagnostics()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** The resource host's HTTP server on `port`, serving `bytes` at /blob; resolves with the blob's sha256. */
  async startHttp(h: Host, port: number, bytes: number): Promise<string> {
    const proc = this.spawn(h, process.execPath, ["-e", HTTP_SCRIPT, String(port), String(bytes)]);
    return (await proc.message<{ sha256: string }>("ready", 30_000)).sha256;
  }

  /** Stops every tracked process, then removes the namespaces. Every call shares the one teardown. */
  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      await Promise.all([...this.processes].map((p) => p.stop(1000)));
      this.removeNamespaces();
    })();
    return this.destroying;
  }

  private removeNamespaces(): void {
    for (const h of this.hosts) {
      rmSync(`/etc/netns/${h.ns}`, { recursive: true, force: true });
      try {
        execFileSync("ip", ["netns", "del", h.ns], { stdio: "ignore" });
      } catch {
        // never made, or gone already
      }
    }
  }

  /** Namespaces of this topology that still exist, and their /etc/netns directories. */
  leftovers(): string[] {
    const listed = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    const names = new Set(listed.split("\n").map((line) => line.split(" ")[0]!).filter(Boolean));
    return this.hosts.flatMap((h) => [...(names.has(h.ns) ? [h.ns] : []), ...(existsSync(`/etc/netns/${h.ns}`) ? [`/etc/netns/${h.ns}`] : [])]);
  }
}

function ip(...args: string[]): string {
  try {
    return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    throw describeFailure(["ip", ...args], error);
  }
}
