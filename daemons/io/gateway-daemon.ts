// `wardline gateway` at run time: a GatewayDevice driven by real I/O (device-io.ts), the portal
// socket, the host's forwarding and masquerading, and a resolver for DNS resources.
//
// 1. Start (DeviceDaemon.open): identity, TUN device, UDP socket, status endpoints; then the portal
//    socket joins as role "gateway" with the public key, name and version.
// 2. The first init makes the GatewayDevice: its tunnel addresses are the state machine's own (where
//    control messages go). The TUN device gets the gateway's addresses with the whole tunnel ranges
//    (so answers to any client go back into it), forwarding is turned on and tunnel traffic
//    leaving by another interface is masqueraded: resources answer the gateway, and no inbound port
//    is needed. Host changes run one after another, in order, off the packet path.
// 3. Every later portal message goes to the device. An init with other tunnel addresses cannot be
//    followed without a restart: it is logged, and the old addresses stay.
// 4. Outputs: portal messages → the socket; `network` packets → the TUN device; `resolve` → the
//    resolver, whose answer comes back as handleResolved (a failure is logged; the state machine
//    asks again after its retry interval); path and session changes → logs and metrics.
// 5. Stop: the socket closed, the nftables table removed and forwarding set back, TUN and socket
//    closed.

import { randomBytes } from "node:crypto";
import { GatewayDevice, type GatewayDeviceOutput } from "../proto/gateway/device.js";
import type { PortalIn } from "../proto/tunnel/device-core.js";
import { DeviceDaemon, nodeOptions, wallClockAtZeroMs, type DeviceDaemonOptions } from "./device-daemon.js";
import type { DeviceIo } from "./device-io.js";
import type { DeviceIdentity } from "./device-state.js";
import { GatewayHostNetwork, TUNNEL_RANGES } from "./host-network.js";
import type { PortalSocketEvent } from "./portal-socket.js";
import { NameResolver } from "./resolver.js";
import { metricFamily } from "./status-http.js";

export interface GatewayDaemonOptions extends DeviceDaemonOptions {
  /** Resolvers for DNS resources ("addr" or "addr:port"); the host's when left out. */
  resolvers?: readonly string[];
}

/** The gateway daemon (file header). */
export class GatewayDaemon extends DeviceDaemon<"gateway", GatewayDeviceOutput> {
  private gateway: GatewayDevice | undefined;
  private readonly host: GatewayHostNetwork;
  private readonly resolver: NameResolver;
  private hostReady = false;
  private tunnel: { ipv4: string; ipv6: string } | undefined;
  private resolveFailures = 0;

  private constructor(options: GatewayDaemonOptions, identity: DeviceIdentity, io: DeviceIo<GatewayDeviceOutput>) {
    super(options, identity, io);
    this.host = new GatewayHostNetwork({ device: io.tun.name });
    this.resolver = new NameResolver(options.resolvers ? { servers: options.resolvers } : {});
  }

  /** Starts the gateway (1.); rejects naming what could not be opened. */
  static async start(options: GatewayDaemonOptions): Promise<GatewayDaemon> {
    const { identity, io } = await DeviceDaemon.open<GatewayDeviceOutput>(options);
    const daemon = new GatewayDaemon(options, identity, io);
    try {
      await daemon.serveStatus();
    } catch (error) {
      io.close();
      throw error;
    }
    daemon.joinPortal("gateway", (event) => daemon.onChannel(event));
    return daemon;
  }

  protected get device(): GatewayDevice | undefined {
    return this.gateway;
  }

  ready(): boolean {
    return this.portal.joined && this.gateway !== undefined && this.hostReady;
  }

  private onChannel(event: PortalSocketEvent<"gateway">): void {
    this.channelEvent(event);
    if (event.type !== "message") return;
    const message = { event: event.event, payload: event.payload } as PortalIn<"gateway">;
    this.options.log("debug", "from the portal", { event: message.event });
    if (message.event === "init" && this.gateway === undefined) this.create(message.payload.interface);
    else if (message.event === "init" && (message.payload.interface.ipv4 !== this.tunnel!.ipv4 || message.payload.interface.ipv6 !== this.tunnel!.ipv6)) {
      this.options.log("warn", "the portal gave other tunnel addresses; keeping the old ones until a restart", { now: this.tunnel, given: message.payload.interface });
    }
    const gateway = this.gateway;
    if (gateway === undefined) {
      this.options.log("debug", "portal message before init, ignored", { event: message.event });
      return;
    }
    this.io.input((now) => gateway.handlePortal(now, message));
  }

  /** The device and the host's side of it, from the first init (2.). */
  private create(tunnel: { ipv4: string; ipv6: string }): void {
    this.tunnel = { ipv4: tunnel.ipv4, ipv6: tunnel.ipv6 };
    const gateway = new GatewayDevice({
      node: nodeOptions(this.identity, this.io.port),
      state: { ipv4: tunnel.ipv4, ipv6: tunnel.ipv6, epochMs: wallClockAtZeroMs(), random: (n) => new Uint8Array(randomBytes(n)) },
    });
    this.gateway = gateway;
    this.io.attach(gateway, {
      onTunPacket: (now, packet) => gateway.handleNetworkPacket(now, packet),
      onOutput: (_now, output) => this.output(output),
      onFatal: (reason) => this.tunGone(reason),
    });
    const v4Length = TUNNEL_RANGES.ipv4.split("/")[1];
    const v6Length = TUNNEL_RANGES.ipv6.split("/")[1];
    this.hostChange("configuring the TUN device and forwarding", async () => {
      await this.host.configure({ addresses: [`${tunnel.ipv4}/${v4Length}`, `${tunnel.ipv6}/${v6Length}`], mtu: this.options.mtu });
      await this.host.forward();
      this.hostReady = true;
      this.options.log("info", "forwarding", { device: this.io.tun.name, ipv4: tunnel.ipv4, ipv6: tunnel.ipv6 });
    });
  }

  private output(output: GatewayDeviceOutput): void {
    switch (output.type) {
      case "portal":
        this.options.log("debug", "to the portal", { event: output.message.event });
        this.portal.sendMessage(output.message);
        if (output.message.event === "authorization_creation_failed") this.options.log("warn", "authorization refused", { ...output.message.payload });
        break;
      case "network":
        this.io.writeTun(output.packet);
        break;
      case "resolve": {
        const name = output.name;
        this.resolver.resolve(name).then(
          (addresses) => this.io.input((now) => this.gateway!.handleResolved(now, name, addresses)),
          (error: Error) => {
            this.resolveFailures++;
            this.options.log("warn", "resolving a DNS resource failed", { name, error: error.message });
          },
        );
        break;
      }
      case "tunnel":
        this.tunnelEvent(output.event);
        break;
    }
  }

  protected roleMetrics(): string {
    const state = this.gateway?.state;
    return [
      metricFamily("wardline_gateway_refused_total", "counter", "Clients' packets refused with ICMP administratively prohibited.", [{ value: this.gateway?.refused ?? 0 }]),
      metricFamily("wardline_gateway_dropped_total", "counter", "Packets the gateway's policy and NAT dropped, by reason.", Object.entries(state?.drops ?? {}).map(([reason, value]) => ({ labels: { reason }, value }))),
      metricFamily("wardline_gateway_resolve_failures_total", "counter", "DNS resource names the resolver could not resolve.", [{ value: this.resolveFailures }]),
    ].join("");
  }

  protected async restoreHost(): Promise<void> {
    await this.hostChanges;
    this.resolver.cancel();
    await this.host.restore();
  }
}
