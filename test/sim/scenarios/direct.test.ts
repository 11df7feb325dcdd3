// Scenario (a): client and gateway behind port-restricted NATs punch through to a direct path,
// and a datagram to the resource comes back through the tunnel.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure } from "../../support/prng.js";
import { portRestricted } from "../nat.js";
import { runSeeds } from "../scenario.js";
import { buildWorld, GATEWAY_ID } from "./world.js";

beforeEach(reportSeedOnFailure);

describe("scenario: direct path through two port-restricted NATs", () => {
  it("connects directly and echoes through the tunnel", async () => {
    await runSeeds("tunnel direct", (seed) => {
      const w = buildWorld(seed, "direct", { clientNat: portRestricted, gatewayNat: portRestricted, internet: { jitter: 5, loss: 0.02 } });
      expect(w.establish(), w.net.where(`\n${w.net.traceTail(60)}`)).toBe(true);
      w.net.runFor(3_000);
      const pair = w.client.node.selectedPair(GATEWAY_ID);
      expect(pair?.relayed, w.net.where()).toBe(false);
      expect(pair?.to.address).toBe("198.51.100.2");
      // 2% loss a hop: nearly every echo of a stream comes back, each within a round trip.
      const pings = w.pingFor(5_000, 250);
      w.net.runFor(500);
      expect(pings.filter((p) => p.answered()).length, w.net.where()).toBeGreaterThanOrEqual(pings.length - 4);
    }, { count: 6 });
  });
});
