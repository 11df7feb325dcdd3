// The end-to-end topology (bench/topology.ts) behaves as the NATs it stands for, through real kernels:
// the Internet reaches no site, a site reaches the Internet from its router's address, an "easy" NAT
// keeps one mapping for every destination (so two peers behind easy NATs can punch a hole to each
// other), a "hard" NAT maps each destination anew (so they cannot), and destroy() leaves nothing.

import { afterEach, describe, expect, it } from "vitest";
import { AccessTopology, missingTopologyTools, type NatKind } from "../../bench/topology.js";

const missing = missingTopologyTools({ ping: "iputils-ping", sha256sum: "coreutils" });
if (missing !== undefined && process.env.CI === "true") throw new Error(`the end-to-end topology cannot be built under CI: ${missing}`);
if (missing !== undefined) console.warn(`skipping the topology tests: ${missing}`);

const MIRROR_PORT = 7777;

/** Answers every UDP datagram with the address and port it came from. */
const MIRROR = `
const s = require("node:dgram").createSocket("udp4");
s.on("message", (m, r) => s.send(JSON.stringify({ seen: r.address + ":" + r.port }), r.port, r.address));
s.bind(${MIRROR_PORT}, () => console.log(JSON.stringify({ ready: true })));
`;

/**
 * From one socket on a fixed port: asks each mirror how it is seen, then (when given a peer) sends to
 * the peer every 50 ms for 3 s and reports whether the peer's datagrams came through.
 */
const PROBE = `
const [port, mirrors, peerText] = process.argv.slice(1);
const s = require("node:dgram").createSocket("udp4");
const seen = {};
let heard = false;
s.on("message", (m, r) => {
  const text = String(m);
  if (text.startsWith("{")) seen[r.address] = JSON.parse(text).seen;
  else if (text === "punch") heard = true;
});
s.bind(Number(port), async () => {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  for (let i = 0; i < 10 && Object.keys(seen).length < mirrors.split(",").length; i++) {
    for (const m of mirrors.split(",")) s.send("?", ${MIRROR_PORT}, m);
    await sleep(100);
  }
  console.log(JSON.stringify({ seen }));
  if (peerText) {
    const [address, peerPort] = JSON.parse(peerText);
    for (let i = 0; i < 60; i++) {
      s.send("punch", Number(peerPort), address);
      await sleep(50);
    }
    console.log(JSON.stringify({ heard }));
  }
  s.close();
});
`;

let topology: AccessTopology | undefined;
afterEach(async () => {
  await topology?.destroy();
  topology = undefined;
});

async function mirrors(t: AccessTopology): Promise<void> {
  for (const h of [t.relay, t.portal]) await t.spawn(h, process.execPath, ["-e", MIRROR]).message("ready", 10_000);
}

/** How the relay and the portal see a socket on `port` of `host`. */
async function seen(t: AccessTopology, host: AccessTopology["client"], port: number): Promise<Record<string, string>> {
  const out = await t.run(host, process.execPath, ["-e", PROBE, String(port), `${t.relay.address},${t.portal.address}`]);
  return (JSON.parse(out.trim().split("\n")[0]!) as { seen: Record<string, string> }).seen;
}

/** Both peers learn their mapping from the relay, then send to each other's at once. */
async function punch(t: AccessTopology): Promise<{ client: boolean; gateway: boolean }> {
  const gateway = t.gateways[0]!;
  const clientMapped = (await seen(t, t.client, 40_001))[t.relay.address]!.split(":");
  const gatewayMapped = (await seen(t, gateway, 40_002))[t.relay.address]!.split(":");
  const [a, b] = await Promise.all([
    t.run(t.client, process.execPath, ["-e", PROBE, "40001", t.relay.address, JSON.stringify(gatewayMapped)]),
    t.run(gateway, process.execPath, ["-e", PROBE, "40002", t.relay.address, JSON.stringify(clientMapped)]),
  ]);
  const heard = (out: string): boolean => (JSON.parse(out.trim().split("\n").at(-1)!) as { heard: boolean }).heard;
  return { client: heard(a), gateway: heard(b) };
}

describe.skipIf(missing !== undefined)("the end-to-end topology", () => {
  it("easy NATs: the Internet reaches no site, sites leave from their router's address with one mapping, and a hole can be punched", async () => {
    const t = (topology = AccessTopology.create({ clientNat: "easy", gatewayNat: "easy" }));
    await t.run(t.client, "ping", ["-c", "1", "-W", "2", t.relay.address]);
    await t.run(t.resource, "ping", ["-c", "1", "-W", "2", t.portal.address]);
    await expect(t.run(t.client, "ping", ["-c", "1", "-W", "1", t.resource.address])).rejects.toThrow();
    await expect(t.run(t.relay, "ping", ["-c", "1", "-W", "1", t.gateways[0]!.address])).rejects.toThrow();
    await mirrors(t);
    const view = await seen(t, t.client, 40_000);
    const [relayView, portalView] = [view[t.relay.address]!, view[t.portal.address]!];
    expect(relayView.split(":")[0]).toBe(t.clientRouter.address);
    // Endpoint-independent mapping: both destinations see the same public port.
    expect(portalView).toBe(relayView);
    expect(await punch(t)).toEqual({ client: true, gateway: true });
  }, 60_000);

  it.each<[NatKind, NatKind]>([["hard", "hard"], ["hard", "easy"]])("%s client NAT, %s gateway NAT: every destination gets its own mapping, and no hole can be punched", async (clientNat, gatewayNat) => {
    const t = (topology = AccessTopology.create({ clientNat, gatewayNat }));
    await mirrors(t);
    const view = await seen(t, t.client, 40_000);
    expect(view[t.relay.address]!.split(":")[0]).toBe(t.clientRouter.address);
    expect(view[t.portal.address]!.split(":")[1]).not.toBe(view[t.relay.address]!.split(":")[1]);
    // The hard side's mapping towards the peer is not the one the relay saw: the peer's datagrams go to
    // a port that leads nowhere, and the hard side's come from a port the peer's NAT expects nothing from.
    expect(await punch(t)).toEqual({ client: false, gateway: false });
  }, 60_000);

  it("the resource host serves a DNS zone and HTTP to the site, the WAN a public zone, and neither reaches the client's network", async () => {
    const t = (topology = AccessTopology.create({ clientNat: "easy", gatewayNat: "easy" }));
    const gateway = t.gateways[0]!;
    await t.startDns(t.resource, { "corp.example": [t.resource.address] });
    await t.startDns(t.portal, { "public.example": [t.portal.address] });
    const sha256 = await t.startHttp(t.resource, 8080, 1_000_000);
    t.setResolvers(gateway, [t.resource.address]);
    t.setResolvers(t.client, [t.portal.address]);
    expect((await t.run(gateway, "dig", ["+short", "app.corp.example"])).trim()).toBe(t.resource.address);
    expect((await t.run(gateway, "dig", ["+short", "corp.example"])).trim()).toBe(t.resource.address);
    expect(await t.run(gateway, "dig", ["+short", "other.example"])).toBe("");
    expect((await t.run(t.client, "dig", ["+short", "www.public.example"])).trim()).toBe(t.portal.address);
    const got = await t.run(gateway, "sh", ["-c", "curl -sf http://app.corp.example:8080/blob | sha256sum"]);
    expect(got.split(" ")[0]).toBe(sha256);
    expect((await t.run(gateway, "curl", ["-sf", "http://app.corp.example:8080/blob.sha256"])).trim()).toBe(sha256);
    await expect(t.run(t.client, "curl", ["-sf", "--max-time", "2", `http://${t.resource.address}:8080/blob.sha256`])).rejects.toThrow();
  }, 60_000);

  it("destroy() stops what runs inside and removes every namespace", async () => {
    const t = AccessTopology.create({ clientNat: "easy", gatewayNat: "hard", gateways: 2 });
    const proc = t.spawn(t.relay, process.execPath, ["-e", MIRROR]);
    await proc.message("ready", 10_000);
    t.setResolvers(t.client, [t.portal.address]);
    expect(t.leftovers()).toHaveLength(t.hosts.length + 1);
    await t.destroy();
    expect(proc.running).toBe(false);
    expect(t.leftovers()).toEqual([]);
  }, 60_000);
});
