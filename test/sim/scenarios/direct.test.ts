// Scenario (a): client and gateway behind port-restricted NATs punch through to a direct path,
// and a datagram to the resource comes back through the tunnel.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure } from "../../support/prng.js";
import { portRestricted } from "../nat.js";
import { binomialBound, runSeeds } from "../scenario.js";
import { buildWorld, GATEWAY_ID } from "./world.js";

beforeEach(reportSeedOnFailure);

/** The loss on the internet's hop; the LANs' hops are lossless (LAN_LINK). */
const LOSS = 0.02;
/** How often, per seed, random loss alone may fail the test. */
const FALSE_FAILURE_RISK = 1e-6;


describe("scenario: direct path through two port-restricted NATs", () => {
  it("connects directly and echoes through the tunnel", async () => {
    await runSeeds("tunnel direct", (seed) => {
      const w = buildWorld(seed, "direct", { clientNat: portRestricted, gatewayNat: portRestricted, internet: { jitter: 5, loss: LOSS } });
      expect(w.establish(), w.net.where(`\n${w.net.traceTail(60)}`)).toBe(true);
      w.net.runFor(3_000);
      const pair = w.client.node.selectedPair(GATEWAY_ID);
      expect(pair?.relayed, w.net.where()).toBe(false);
      expect(pair?.to.address).toBe("198.51.100.2");
      const pings = w.pingFor(5_000, 250);
      w.net.runFor(500);
      // On the direct path a ping crosses one lossy hop and its echo one more: client → client-nat
      // (LAN, lossless) → gateway-nat (the internet, one hop between any two of its nodes, LOSS) →
      // gateway (LAN, lossless), and back. Nothing in the tunnel resends a lost datagram, so each
      // ping is lost with p = 1 − (1 − LOSS)² ≈ 3.96 %, independently of the others (one random
      // stream draws every hop's loss), and the count lost of 20 is Binomial(20, p): mean 0.79,
      // P(≥ 5) ≈ 9.2e-4 (the bound of 4 this test had failed about one seed in 1,100, one run of 6
      // seeds in 180), P(≥ 8) ≈ 5.0e-7. So at most 7 may be lost: P(X > 7) < FALSE_FAILURE_RISK.
      // A path that loses half its pings still loses 8 or more with P ≈ 0.87 a seed, so all 6
      // seeds of a run pass with P ≈ 0.13⁶ ≈ 5e-6.
      const maxLost = binomialBound(pings.length, 1 - (1 - LOSS) ** 2, FALSE_FAILURE_RISK);
      expect(maxLost, "a bound that half the pings lost would pass").toBeLessThan(pings.length / 2);
      const lost = pings.filter((p) => !p.answered()).length;
      expect(lost, w.net.where(`lost ${lost} of ${pings.length}, at most ${maxLost} from random loss`)).toBeLessThanOrEqual(maxLost);
    }, { count: 6 });
  });
});
