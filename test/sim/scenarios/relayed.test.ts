// Scenarios (b) and (c): both sides behind symmetric NATs, so only a relayed path works; and the
// relay in use disappearing, after which traffic resumes over the other relay.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure } from "../../support/prng.js";
import { symmetric } from "../nat.js";
import { binomialBound, runSeeds } from "../scenario.js";
import { buildWorld, GATEWAY_ID, type World } from "./world.js";

beforeEach(reportSeedOnFailure);

/** The loss on each of the internet's hops; the LANs' hops are lossless. */
const LOSS = 0.02;
/** How often, per seed, random loss alone may fail the test. */
const FALSE_FAILURE_RISK = 1e-6;

function connected(w: World): void {
  expect(w.establish(), w.net.where(`\n${w.net.traceTail(60)}`)).toBe(true);
}

describe("scenario: relayed path through two symmetric NATs", () => {
  it("connects over a relay and traffic flows", async () => {
    await runSeeds("tunnel relayed", (seed) => {
      const w = buildWorld(seed, "relayed", { clientNat: symmetric, gatewayNat: symmetric, internet: { jitter: 5, loss: LOSS } });
      connected(w);
      const pair = w.client.node.selectedPair(GATEWAY_ID);
      expect(pair?.relayed, w.net.where()).toBe(true);
      const pings = w.pingFor(10_000, 250);
      w.net.runFor(1_000);
      // Relayed, a ping crosses two lossy hops (client-nat → relay → gateway-nat) and its echo two
      // more, so each is lost with p = 1 − (1 − LOSS)⁴ ≈ 7.8 %, independently: the count lost of 40
      // is Binomial(40, p), mean 3.1, and at most 13 are lost but for a chance under
      // FALSE_FAILURE_RISK a seed. A path losing half its pings loses more with P ≈ 0.98 a seed.
      const maxLost = binomialBound(pings.length, 1 - (1 - LOSS) ** 4, FALSE_FAILURE_RISK);
      expect(maxLost, "a bound that half the pings lost would pass").toBeLessThan(pings.length / 2);
      const lost = pings.filter((p) => !p.answered()).length;
      expect(lost, w.net.where(`lost ${lost} of ${pings.length}, at most ${maxLost} from random loss`)).toBeLessThanOrEqual(maxLost);
      // The path in use has a channel: the relays' forwarding tables carry it as ChannelData.
      expect(w.relays.some((r) => r.forwarded.toPeer > 0 && r.forwarded.toClient > 0), w.net.where()).toBe(true);
    }, { count: 6 });
  });

  it("moves to the other relay when the one in use disappears", async () => {
    await runSeeds("tunnel relay failover", (seed) => {
      const w = buildWorld(seed, "relay failover", { clientNat: symmetric, gatewayNat: symmetric, internet: { jitter: 5 } });
      connected(w);
      w.net.runFor(3_000);
      const pair = w.client.node.selectedPair(GATEWAY_ID)!;
      expect(pair.relayed).toBe(true);
      // The relay the client's path goes through: its own relayed socket, or the gateway's candidate's.
      const relayAddress = pair.source.type === "relay" ? pair.source.relayAddress : pair.to.address;
      const relay = w.relayHosts.find((h) => h.address === relayAddress)!;
      w.net.partition([relay.name]);
      const cutAt = w.net.now;
      const pings = w.pingFor(40_000, 500);
      w.net.runFor(1_000);
      const after = w.client.node.selectedPair(GATEWAY_ID)!;
      const afterRelay = after.source.type === "relay" ? after.source.relayAddress : after.to.address;
      expect(afterRelay, w.net.where()).not.toBe(relayAddress);
      // Consent to the dead path lapses after CONSENT_TIMEOUT (15 s); the other relay's pair is already valid.
      const late = pings.filter((p) => p.sentAt >= cutAt + 20_000);
      expect(late.every((p) => p.answered()), w.net.where(`resumed: ${pings.filter((p) => p.answered()).map((p) => p.sentAt - cutAt).join(",")}`)).toBe(true);
    }, { count: 6 });
  });
});
