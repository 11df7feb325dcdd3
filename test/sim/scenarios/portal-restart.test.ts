// Scenario: the portal restarts while a tunnel carries traffic, and its re-sync reaches the devices
// before the relays have joined it again. After a restart every device and relay re-joins at the
// pace of its own reconnect backoff, so a client's or gateway's init may list no relay at all
// (the relays it allocated on are up, they just have not re-joined yet); relays_presence brings
// each relay as it arrives. The portal is the control plane: the path in use, the ICE agents, the
// TURN allocations and the WireGuard session must come through as they were, and every ping with
// them (the end-to-end test "survives the portal" in test/e2e/access.test.ts, in virtual time).

import { beforeEach, describe, expect, it } from "vitest";
import type { IcePairView } from "../../../daemons/proto/ice/agent.js";
import { reportSeedOnFailure } from "../../support/prng.js";
import { portRestricted, symmetric } from "../nat.js";
import { runSeeds } from "../scenario.js";
import { buildWorld, CLIENT_ID, GATEWAY_ID, type World } from "./world.js";

beforeEach(reportSeedOnFailure);

/** A pair by the sockets it joins (candidate priorities may be recomputed; the path is what counts). */
function pathOf(pair: IcePairView | undefined): string {
  if (pair === undefined) return "none";
  const source = pair.source.type === "host" ? `${pair.source.address}:${pair.source.port}` : `relay ${pair.source.relayAddress}:${pair.source.relayPort}`;
  return `${source} -> ${pair.to.address}:${pair.to.port}`;
}

/** What must not change: each side's path, agent and sessions, and the allocations on the relays. */
function snapshot(w: World) {
  return {
    paths: [pathOf(w.client.node.selectedPair(GATEWAY_ID)), pathOf(w.gateway.node.selectedPair(CLIENT_ID))],
    agents: [w.client.node.agentOf(GATEWAY_ID), w.gateway.node.agentOf(CLIENT_ID)],
    sessions: [w.client.node.stats.sessionsInstalled, w.gateway.node.stats.sessionsInstalled],
    iceRestarts: [w.client.node.stats.iceRestarts, w.gateway.node.stats.iceRestarts],
    allocations: w.relays.map((relay) => relay.server.stats.allocations),
  };
}

describe("scenario: the portal restarts and re-syncs before the relays re-join it", () => {
  for (const [kind, behaviour] of [["direct", portRestricted], ["relayed", symmetric]] as const) {
    it(`the ${kind} path, the ICE agents, the allocations and the WireGuard session come through untouched; no ping is lost`, async () => {
      await runSeeds(`portal restart ${kind}`, (seed) => {
        // The real portal derives the pair's secrets, so an authorization re-sent after a restart carries the same ones.
        const w = buildWorld(seed, `portal restart ${kind}`, { clientNat: behaviour, gatewayNat: behaviour, internet: { jitter: 5 }, pairSecrets: true });
        expect(w.establish(), w.net.where(`\n${w.net.traceTail(60)}`)).toBe(true);
        w.net.runFor(3_000);
        expect(w.client.node.selectedPair(GATEWAY_ID)?.relayed).toBe(kind === "relayed");
        const before = snapshot(w);
        const restartedAt = w.net.now;

        w.net.act(() => w.portal.down());
        const pings = w.pingFor(5_000, 200);
        // Back: the gateway and the client join again and are re-synced at once, the gateway with the
        // authorizations it still holds; no relay has re-joined yet, so neither init lists one.
        w.net.act(() => {
          w.portal.up();
          w.portal.send("portal", "gateway", { event: "init_gateway", relays: [], authorizations: [...w.authorizations] });
          w.portal.send("portal", "client", w.clientInit([]));
        });
        pings.push(...w.pingFor(3_000, 200));
        // The relays re-join, each device hears relays_presence with fresh credentials.
        w.net.act(() => {
          w.portal.send("portal", "gateway", { event: "relays_presence", payload: { connected: w.relayList(GATEWAY_ID), disconnected_ids: [] } });
          w.portal.send("portal", "client", { event: "relays_presence", payload: { connected: w.relayList(CLIENT_ID), disconnected_ids: [] } });
        });
        pings.push(...w.pingFor(20_000, 200));
        w.net.runFor(1_000);

        const since = (events: World["clientAttachment"]["events"]) =>
          events.filter((e) => e.at >= restartedAt && (e.event.type === "connected" || e.event.type === "disconnected")).map((e) => `${e.at} ${JSON.stringify(e.event)}`);
        const invalidated = (party: World["clientParty"]) => party.received.filter((r) => r.at >= restartedAt && r.message.event === "invalidate_ice_candidates").map((r) => JSON.stringify(r.message));
        const detail = w.net.where(`\n${w.net.traceTail(40)}`);
        expect({ client: since(w.clientAttachment.events), gateway: since(w.gatewayAttachment.events) }, detail).toEqual({ client: [], gateway: [] });
        expect({ toClient: invalidated(w.clientParty), toGateway: invalidated(w.gatewayParty) }, detail).toEqual({ toClient: [], toGateway: [] });
        const after = snapshot(w);
        expect(after.paths, detail).toEqual(before.paths);
        expect(after.agents[0] === before.agents[0] && after.agents[1] === before.agents[1], "the same ICE agents").toBe(true);
        expect({ ...after, agents: undefined }, detail).toEqual({ ...before, agents: undefined });
        expect(pings.filter((p) => !p.answered()).map((p) => p.sentAt - restartedAt), detail).toEqual([]);
      }, { count: 4 });
    }, 60_000);
  }
});
