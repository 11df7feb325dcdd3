// Scenarios (d), (e), (f): the client roams to another network; the portal is unreachable for an
// hour while a tunnel carries traffic; the portal revokes access at the gateway.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure } from "../../support/prng.js";
import { portRestricted, symmetric } from "../nat.js";
import { runSeeds } from "../scenario.js";
import { buildWorld, CLIENT_ID, GATEWAY_ID, RESOURCE_ID, type World } from "./world.js";

beforeEach(reportSeedOnFailure);

function connected(w: World): void {
  expect(w.establish(), w.net.where(`\n${w.net.traceTail(60)}`)).toBe(true);
  w.net.runFor(3_000);
}

describe("scenario: resilience of an established tunnel", () => {
  for (const [kind, behaviour] of [["port-restricted", portRestricted], ["symmetric", symmetric]] as const) {
    it(`(d) the client roams to another network (${kind} NATs): traffic resumes within 2 s`, async () => {
      await runSeeds(`tunnel roaming ${kind}`, (seed) => {
        const w = buildWorld(seed, `roaming ${kind}`, { clientNat: behaviour, gatewayNat: behaviour, internet: { jitter: 5 } });
        const otherNat = w.net.addNat("cellular-nat", "198.51.100.3", behaviour);
        connected(w);
        const roamedAt = w.net.now;
        w.net.act((now) => {
          w.net.roam(w.clientHost, "10.20.0.5", otherNat.inside);
          // The OS tells the daemon its interface changed.
          w.client.node.setLocalAddresses(now, ["10.20.0.5"]);
        });
        const pings = w.pingFor(6_000, 100);
        w.net.runFor(1_000);
        const firstBack = pings.find((p) => p.answered());
        const detail = `answered after roaming at: ${pings.filter((p) => p.answered()).map((p) => p.sentAt - roamedAt).join(",")}`;
        expect(firstBack, w.net.where(detail)).toBeDefined();
        expect(firstBack!.sentAt - roamedAt, w.net.where(detail)).toBeLessThanOrEqual(2_000);
        // And from 2 s on, every one comes back (paths may still flap while ICE settles before that).
        expect(pings.filter((p) => p.sentAt >= roamedAt + 2_000).every((p) => p.answered()), w.net.where(detail)).toBe(true);
      }, { count: 6 });
    });
  }

  for (const [kind, behaviour] of [["direct", portRestricted], ["relayed", symmetric]] as const) {
    it(`(e) the portal is gone for an hour: established ${kind} traffic never stops`, async () => {
      await runSeeds(`tunnel portal outage ${kind}`, (seed) => {
        const w = buildWorld(seed, `portal outage ${kind}`, { clientNat: behaviour, gatewayNat: behaviour, internet: { jitter: 5 } });
        connected(w);
        expect(w.client.node.selectedPair(GATEWAY_ID)?.relayed).toBe(kind === "relayed");
        w.net.act(() => w.portal.down());
        // An hour spans WireGuard rekeys (2 min), TURN refreshes, permission and channel renewals.
        const pings = w.pingFor(3_600_000, 2_000);
        w.net.runFor(1_000);
        const lost = pings.filter((p) => !p.answered()).map((p) => p.sentAt);
        expect(lost, w.net.where()).toEqual([]);
      }, { count: 2 });
    }, 120_000);
  }

  it("(f) reject_access at the gateway: forwarding stops at once", async () => {
    await runSeeds("tunnel reject access", (seed) => {
      const w = buildWorld(seed, "reject access", { clientNat: portRestricted, gatewayNat: portRestricted, internet: { jitter: 5 } });
      connected(w);
      const authorization = w.authorizations.at(-1)!;
      // Sent a second into a stream of pings, so some are forwarded before it lands and some after.
      w.net.at(w.net.now + 1_000, () => w.portal.send("portal", "gateway", { event: "reject_access", payload: { authorization_id: authorization.authorization_id, client_id: CLIENT_ID, resource_id: RESOURCE_ID } }));
      const before = w.gatewayAttachment.events.length;
      const pings = w.pingFor(3_000, 20);
      w.net.runFor(1_000);
      const rejectedAt = w.gatewayParty.received.find((r) => r.message.event === "reject_access")!.at;
      const forwarded = w.gatewayAttachment.events.slice(before).filter((e) => e.event.type === "forwarded");
      expect(forwarded.length, w.net.where()).toBeGreaterThan(0);
      expect(forwarded.every((e) => e.at < rejectedAt), w.net.where(`rejected at ${rejectedAt}, last forwarded at ${forwarded.at(-1)?.at}`)).toBe(true);
      expect(pings.filter((p) => p.sentAt > rejectedAt).some((p) => p.answered())).toBe(false);
      expect(w.gateway.node.peerIds).not.toContain(CLIENT_ID);
      expect(w.client.node.peerIds).toContain(GATEWAY_ID);
    }, { count: 4 });
  });
});
