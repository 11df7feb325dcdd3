// `wardline client` at run time (headless): a ClientDevice driven by real I/O (device-io.ts), the
// portal socket, the host's routes and DNS, and a socket for upstream DNS queries.
//
// 1. Start: identity, TUN device, UDP socket, status endpoints; a DNS change a crashed run left is
//    undone first (ClientHostNetwork.recover), and only then are the host's resolvers read: they are
//    the upstreams for names outside every resource. Then the portal socket joins as role "client".
// 2. init gives the tunnel addresses: the TUN device gets them (host routes, /32 and /128) and its
//    MTU. Host changes (addresses, routes, DNS) run one after another, in order, off the packet path.
// 3. Outputs: portal messages → the socket; `tun` packets → the TUN device; `dns_upstream` queries →
//    the upstream socket, whose answers come back as handleUpstreamDns; `routes` → the device's routes
//    (applied as a diff); `dns_servers` → the host's resolvers (the sentinels); path and session
//    changes → logs and metrics; a refused gateway → a warning.
// 4. Stop: the socket closed, routes removed and the host's DNS restored, TUN and sockets closed.

import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { ClientDevice, type ClientDeviceOutput } from "../proto/client/device.js";
import type { PortalIn } from "../proto/tunnel/device-core.js";
import { DeviceDaemon, nodeOptions, wallClockAtZeroMs, type DeviceDaemonOptions } from "./device-daemon.js";
import type { DeviceIo } from "./device-io.js";
import type { DeviceIdentity } from "./device-state.js";
import { ClientHostNetwork } from "./host-network.js";
import type { PortalSocketEvent } from "./portal-socket.js";
import { metricFamily } from "./status-http.js";

export interface ClientDaemonOptions extends DeviceDaemonOptions {
  /** The resolv.conf to manage (default /etc/resolv.conf). */
  resolvConf?: string;
}

/** The nameservers of a resolv.conf text, in order. */
export function nameservers(text: string): string[] {
  const found: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    // A zone index (fe80::1%eth0) cannot be dialled by address alone.
    if (m && isIP(m[1]!) !== 0) found.push(m[1]!);
  }
  return found;
}

/** The client daemon (file header). */
export class ClientDaemon extends DeviceDaemon<"client", ClientDeviceOutput> {
  private readonly client: ClientDevice;
  private readonly host: ClientHostNetwork;
  private readonly upstream: { 4: Socket; 6: Socket };
  private configured: string | undefined;
  private hostReady = false;
  private upstreamFailed = 0;

  private constructor(options: ClientDaemonOptions, identity: DeviceIdentity, io: DeviceIo<ClientDeviceOutput>, host: ClientHostNetwork, systemDns: string[]) {
    super(options, identity, io);
    this.host = host;
    this.client = new ClientDevice({
      node: nodeOptions(identity, io.port),
      state: { wallClockAtZeroMs: wallClockAtZeroMs(), random: (n) => new Uint8Array(randomBytes(n)), systemUpstreamDns: systemDns },
    });
    this.upstream = { 4: this.upstreamSocket("udp4"), 6: this.upstreamSocket("udp6") };
  }

  /** Starts the client (1.); rejects naming what could not be opened. */
  static async start(options: ClientDaemonOptions): Promise<ClientDaemon> {
    const { identity, io } = await DeviceDaemon.open<ClientDeviceOutput>(options);
    let daemon: ClientDaemon;
    try {
      const host = new ClientHostNetwork({ device: io.tun.name, stateDir: options.stateDir, ...(options.resolvConf ? { resolvConf: options.resolvConf } : {}) });
      if (await host.recover()) options.log("warn", "restored the host's DNS, which a run that did not stop cleanly had left changed");
      const systemDns = nameservers(await readFile(options.resolvConf ?? "/etc/resolv.conf", "utf8").catch(() => ""));
      daemon = new ClientDaemon(options, identity, io, host, systemDns);
      await daemon.serveStatus();
    } catch (error) {
      io.close();
      throw error;
    }
    daemon.io.attach(daemon.client, {
      onTunPacket: (now, packet) => daemon.client.handleTunPacket(now, packet),
      onOutput: (_now, output) => daemon.output(output),
      onFatal: (reason) => daemon.tunGone(reason),
    });
    daemon.joinPortal("client", (event) => daemon.onChannel(event));
    return daemon;
  }

  protected get device(): ClientDevice {
    return this.client;
  }

  ready(): boolean {
    return this.portal.joined && this.hostReady;
  }

  private upstreamSocket(type: "udp4" | "udp6"): Socket {
    const socket = createSocket({ type });
    socket.on("message", (bytes, rinfo) => this.io.input((now) => this.client.handleUpstreamDns(now, { address: rinfo.address, port: rinfo.port }, bytes)));
    socket.on("error", (error) => this.options.log("warn", "upstream DNS socket error", { error: error.message }));
    // Bound on first send; an IPv6 socket on a host without IPv6 only fails its sends.
    return socket;
  }

  private onChannel(event: PortalSocketEvent<"client">): void {
    this.channelEvent(event);
    if (event.type !== "message") return;
    const message = { event: event.event, payload: event.payload } as PortalIn<"client">;
    if (message.event === "init" || message.event === "config_changed") this.configure(message.payload.interface);
    if (message.event === "init") this.options.log("info", "resources", { count: message.payload.resources.length, relays: message.payload.relays.length });
    else this.options.log("debug", "from the portal", { event: message.event });
    this.io.input((now) => this.client.handlePortal(now, message));
  }

  /** The TUN device's addresses and MTU, when they are new (2.). */
  private configure(tunnel: { ipv4: string; ipv6: string }): void {
    const key = `${tunnel.ipv4} ${tunnel.ipv6}`;
    if (this.configured === key) return;
    const previous = this.configured;
    this.configured = key;
    this.hostChange("configuring the TUN device", async () => {
      if (previous !== undefined) this.options.log("warn", "the portal gave other tunnel addresses", { before: previous, now: key });
      await this.host.configure({ addresses: [`${tunnel.ipv4}/32`, `${tunnel.ipv6}/128`], mtu: this.options.mtu });
      this.hostReady = true;
      this.options.log("info", "tunnel addresses set", { device: this.io.tun.name, ipv4: tunnel.ipv4, ipv6: tunnel.ipv6 });
    });
  }

  private output(output: ClientDeviceOutput): void {
    switch (output.type) {
      case "portal":
        this.options.log("debug", "to the portal", { event: output.message.event });
        this.portal.sendMessage(output.message);
        break;
      case "tun":
        this.io.writeTun(output.packet);
        break;
      case "dns_upstream": {
        const family = isIP(output.to.address) === 6 ? 6 : 4;
        this.upstream[family].send(output.bytes, output.to.port, output.to.address, (error) => {
          if (error) this.upstreamFailed++;
        });
        break;
      }
      case "routes": {
        const prefixes = [...output.ipv4, ...output.ipv6];
        this.hostChange("setting routes", async () => {
          await this.host.setRoutes(prefixes);
          this.options.log("info", "routes set", { routes: prefixes.length });
        });
        break;
      }
      case "dns_servers": {
        const servers = [...output.ipv4, ...output.ipv6];
        if (servers.length === 0) break;
        this.hostChange("setting the host's DNS", async () => {
          await this.host.setDns(servers);
          this.options.log("info", "DNS servers set", { servers });
        });
        break;
      }
      case "tunnel":
        this.tunnelEvent(output.event);
        break;
      case "gateway_refused":
        this.options.log("warn", "the portal named a gateway no tunnel can be made with", { gateway: output.gatewayId, reason: output.reason });
        break;
    }
  }

  protected roleMetrics(): string {
    return [
      metricFamily("wardline_client_dropped_total", "counter", "Packets the client dropped, by reason.", Object.entries(this.client.state.drops).map(([reason, value]) => ({ labels: { reason }, value }))),
      metricFamily("wardline_client_upstream_dns_failed_total", "counter", "DNS queries that could not be sent to an upstream resolver.", [{ value: this.upstreamFailed }]),
    ].join("");
  }

  protected async restoreHost(): Promise<void> {
    await this.hostChanges;
    await this.host.restore();
    for (const socket of Object.values(this.upstream)) {
      try {
        socket.close();
      } catch {
        // never bound
      }
    }
  }
}
