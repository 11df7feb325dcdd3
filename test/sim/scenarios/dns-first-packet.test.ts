// Scenario: the first datagrams an application sends to an allowed DNS resource, right after the
// lookup that starts its authorization, are answered and never refused. The client holds them
// until the gateway is authorized and sends the name's mapping (a control message) before
// releasing them; with jitter on the internet the datagrams may overtake the mapping. A gateway
// that refused an unmapped proxy IP (ICMP administratively prohibited) would fail the application's
// first attempt (a TCP connect fails at once instead of retrying); GatewayState holds them instead.

import { beforeEach, describe, expect, it } from "vitest";
import { TYPE_A } from "../../../daemons/proto/dns/constants.js";
import { PROTOCOL_ICMP } from "../../../daemons/proto/ip/constants.js";
import { reportSeedOnFailure } from "../../support/prng.js";
import { portRestricted } from "../nat.js";
import { runSeeds } from "../scenario.js";
import { lookup, sendUntil, tunPackets } from "./apps.js";
import { buildWorld, ECHO_PORT } from "./world.js";

beforeEach(reportSeedOnFailure);

const NAME = "svc.example.test";

describe("scenario: the first datagrams to a DNS resource", () => {
  it("are answered, never refused, when they overtake the name's mapping", async () => {
    await runSeeds("dns first packet", (seed) => {
      const w = buildWorld(seed, "dns first packet", {
        clientNat: portRestricted, gatewayNat: portRestricted, internet: { jitter: 5 }, pairSecrets: true,
        resources: [{ id: "b3000000-0000-4000-8000-000000000801", type: "dns", name: "svc", address: NAME, filters: [] }],
        resolve: () => ["203.0.113.77"],
      });
      w.start();
      w.net.runFor(2_000);
      const proxies = lookup(w, NAME, TYPE_A)!;
      const mark = w.clientAttachment.events.length;
      expect(sendUntil(w, { dst: proxies[0]!, srcPort: 40_000, dstPort: ECHO_PORT, text: "first" }, "echo"), w.net.where()).toBeDefined();
      const refused = tunPackets(w, mark).filter((p) => p.packet.protocol === PROTOCOL_ICMP).map((p) => `${p.quotedText} refused at ${p.at}`);
      expect(refused, w.net.where(`\n${w.net.traceTail(30)}`)).toEqual([]);
    }, { count: 8 });
  });
});
