// The real ICE agent (daemons/proto/ice) in the simulated network, host sockets only: two agents
// behind port-restricted NATs trade candidates through the stub portal and punch through to a
// direct pair, over many seeds of a lossy, jittery internet. A smoke test of the fit between the
// agent and SimEndpoint (the driver with TURN relay sockets is the integrator's, issue 7); written
// against the agent's API of its first version.

import { beforeEach, describe, expect, it } from "vitest";
import { IceAgent, type IceAgentEvent } from "../../daemons/proto/ice/agent.js";
import type { Candidate } from "../../daemons/proto/ice/candidate.js";
import { reportSeedOnFailure } from "../support/prng.js";
import { portRestricted } from "./nat.js";
import { Network, type Attachment, type Host } from "./network.js";
import type { Addr, SimEndpoint, SimTransmit } from "./node.js";
import { StubPortal } from "./portal.js";
import { runSeeds } from "./scenario.js";

beforeEach(reportSeedOnFailure);

/** An IceAgent on host sockets: what arrives at a port is input on that host socket. */
class IceHostEndpoint implements SimEndpoint<IceAgentEvent> {
  constructor(readonly agent: IceAgent) {}

  handleDatagram(now: number, local: Addr, from: Addr, bytes: Uint8Array): void {
    this.agent.handleInput(now, { local: { type: "host", address: local.address, port: local.port }, from }, bytes);
  }

  handleTimeout(now: number): void {
    this.agent.handleTimeout(now);
  }

  pollTransmit(): SimTransmit | undefined {
    const t = this.agent.pollTransmit();
    if (t === undefined) return undefined;
    if (t.source.type !== "host") throw new Error("no relay sockets in this test");
    return { from: { family: t.to.family, address: t.source.address, port: t.source.port }, to: t.to, bytes: t.bytes };
  }

  pollTimeout(): number | undefined {
    return this.agent.pollTimeout();
  }

  pollEvent(): IceAgentEvent | undefined {
    return this.agent.pollEvent();
  }
}

describe("ICE in the simulated network", () => {
  it("two agents behind port-restricted NATs connect directly through their server-reflexive candidates", async () => {
    await runSeeds("ice through two port-restricted NATs", (seed) => {
      const net = new Network({ seed, label: "ice", internet: { jitter: 10, loss: 0.05 } });
      const portal = new StubPortal<Candidate>(net);
      const sides = [
        { name: "client", lan: "192.168.1.2", wan: "198.51.100.1", role: "controlling" as const, creds: { username: "clnt", password: "client-password-0123456789" } },
        { name: "gateway", lan: "192.168.2.2", wan: "198.51.100.2", role: "controlled" as const, creds: { username: "gwgw", password: "gateway-password-012345678" } },
      ];
      const nodes: { host: Host; endpoint: IceHostEndpoint; attachment: Attachment<IceAgentEvent> }[] = [];
      for (const [i, side] of sides.entries()) {
        const other = sides[1 - i]!;
        const nat = net.addNat(`${side.name}-nat`, side.wan, portRestricted);
        const host = net.addHost(side.name, side.lan, nat.inside);
        const endpoint = new IceHostEndpoint(new IceAgent({ role: side.role, local: side.creds, remote: other.creds, random: net.randomBytes(side.name) }));
        const attachment = host.bind(endpoint, 51820);
        // Trickle: each local candidate goes to the other side through the portal as it is raised.
        attachment.onEvent = (_now, event) => {
          if (event.type === "local_candidate") portal.send(side.name, other.name, event.candidate);
        };
        nodes.push({ host, endpoint, attachment });
        portal.connect(side.name, (now, _from, candidate) => endpoint.agent.addRemoteCandidate(now, candidate));
      }
      net.act((now) => {
        for (const [i, side] of sides.entries()) {
          const agent = nodes[i]!.endpoint.agent;
          agent.addLocalCandidate(now, { type: "host", address: side.lan, port: 51820 });
          // Port preservation makes the mapping predictable; a STUN Binding would learn the same.
          agent.addLocalCandidate(now, { type: "srflx", address: side.wan, port: 51820, base: { address: side.lan, port: 51820 }, server: "192.0.2.10" });
        }
      });
      const connected = (i: number) => nodes[i]!.attachment.events.some((e) => e.event.type === "connected");
      const ok = net.runUntil(() => connected(0) && connected(1), 30_000);
      expect(ok, net.where(`\n${net.traceTail()}`)).toBe(true);
      const selected = nodes[0]!.attachment.events.filter((e) => e.event.type === "selected").at(-1)!.event as Extract<IceAgentEvent, { type: "selected" }>;
      expect(selected.pair.relayed).toBe(false);
      expect(selected.pair.to).toEqual({ family: 4, address: "198.51.100.2", port: 51820 });
    }, { count: 8 });
  });
});
