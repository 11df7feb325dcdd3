// GET /api/events, and `online` in GET /api/devices, on both databases: a gateway of the account that
// connects and disconnects is announced online then offline on the stream, and listed so; another
// account's gateway is not announced; recorded authorizations are announced as counts, the other
// account's not; relays' load reports are announced, the other account's not; a user (not an admin)
// and no token are refused.

import { randomUUID } from "node:crypto";
import { request, type IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";
import { randomPublicKey, ScriptedDevice } from "../testing/device.js";

/** An open event stream: its events in order as they arrive. */
class Stream {
  readonly events: { event: string; data: unknown }[] = [];
  private buffer = "";
  private waiters: (() => void)[] = [];

  constructor(readonly response: IncomingMessage) {
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => {
      this.buffer += chunk;
      for (let end = this.buffer.indexOf("\n\n"); end >= 0; end = this.buffer.indexOf("\n\n")) {
        const block = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event !== undefined) this.events.push({ event, data: data === undefined ? undefined : JSON.parse(data) });
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static open(url: string, token: string): Promise<Stream> {
    return new Promise((resolve, reject) => {
      const req = request(`${url}/api/events`, { headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" } }, (res) => resolve(new Stream(res)));
      req.on("error", reject);
      req.end();
    });
  }

  async until(predicate: (e: { event: string; data: unknown }) => boolean, timeoutMs = 10_000): Promise<{ event: string; data: unknown }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(predicate);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no such event within ${timeoutMs} ms; got ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  close(): void {
    this.response.destroy();
  }
}

describe.each(DATABASES)("the account's event stream on $name", (kind) => {
  let t: TestPortal;
  const open: { close(): unknown }[] = [];
  beforeAll(async () => {
    if (kind.missing === undefined) t = await startTestPortal(kind);
  }, 60_000);
  afterAll(async () => {
    for (const o of open) await o.close();
    await t?.close();
  });
  const run = it.skipIf(kind.missing !== undefined);

  run("announces the account's gateway online, then offline, and lists it so; not another account's", async () => {
    const stream = await Stream.open(t.portal.url, t.a.token);
    open.push(stream);
    expect(stream.response.statusCode).toBe(200);
    expect(stream.response.headers["content-type"]).toMatch(/^text\/event-stream/);
    await stream.until((e) => e.event === "ready");

    const site = (await t.call("POST", "/api/sites", { body: { name: "events" } })).body;
    const token = (await t.call("POST", `/api/sites/${site.id}/gateway_tokens`, { body: {} })).body.token as string;
    const otherSite = (await t.call("POST", "/api/sites", { token: t.b.token, body: { name: "elsewhere" } })).body;
    const otherToken = (await t.call("POST", `/api/sites/${otherSite.id}/gateway_tokens`, { token: t.b.token, body: {} })).body.token as string;

    const other = await ScriptedDevice.connect(t.portal.url, "gateway", otherToken, { public_key: randomPublicKey() });
    open.push(other);
    await other.join();
    await other.next("init");
    const gateway = await ScriptedDevice.connect(t.portal.url, "gateway", token, { public_key: randomPublicKey() });
    open.push(gateway);
    await gateway.join();
    await gateway.next("init");

    const listed = (await t.call("GET", `/api/devices?kind=gateway&site_id=${site.id}`)).body;
    expect(listed.data).toHaveLength(1);
    const id = listed.data[0].id as string;
    expect(listed.data[0]).toMatchObject({ kind: "gateway", site_id: site.id, online: true });
    const up = await stream.until((e) => e.event === "presence" && (e.data as { device_id: string }).device_id === id);
    expect(up.data).toEqual({ device_id: id, kind: "gateway", online: true });

    await gateway.close();
    const down = await stream.until((e) => e.event === "presence" && (e.data as { online: boolean }).online === false);
    expect(down.data).toEqual({ device_id: id, kind: "gateway", online: false });
    expect((await t.call("GET", `/api/devices?kind=gateway&site_id=${site.id}`)).body.data[0].online).toBe(false);

    // Only account A's devices were announced to account A.
    const otherId = (await t.call("GET", `/api/devices?kind=gateway&site_id=${otherSite.id}`, { token: t.b.token })).body.data[0].id as string;
    expect(stream.events.some((e) => (e.data as { device_id?: string } | undefined)?.device_id === otherId)).toBe(false);
    expect((await t.call("GET", `/api/devices?kind=gateway&site_id=${otherSite.id}`)).body.data).toEqual([]);
  });

  run("announces the account's recorded authorizations as counts, and not another account's", async () => {
    const stream = await Stream.open(t.portal.url, t.a.token);
    open.push(stream);
    await stream.until((e) => e.event === "ready");
    /** A real gateway device, site, resource and policy of a tenant, for a record to point at. */
    const world = async (token: string, marker: string) => {
      const site = (await t.call("POST", "/api/sites", { token, body: { name: `${marker} site` } })).body;
      const gatewayToken = (await t.call("POST", `/api/sites/${site.id}/gateway_tokens`, { token, body: {} })).body.token as string;
      const gateway = await ScriptedDevice.connect(t.portal.url, "gateway", gatewayToken, { public_key: randomPublicKey() });
      open.push(gateway);
      await gateway.join();
      await gateway.next("init");
      const deviceId = (await t.call("GET", `/api/devices?kind=gateway&site_id=${site.id}`, { token })).body.data[0].id as string;
      const resource = (await t.call("POST", "/api/resources", { token, body: { type: "dns", name: `${marker} wiki`, address: `wiki.${marker}.test`, site_ids: [site.id] } })).body;
      const group = (await t.call("POST", "/api/groups", { token, body: { name: `${marker} group` } })).body;
      const policy = (await t.call("POST", "/api/policies", { token, body: { group_id: group.id, resource_id: resource.id } })).body;
      return { deviceId, resourceId: resource.id as string, policyId: policy.id as string };
    };
    const record = (accountId: string, actorId: string, w: Awaited<ReturnType<typeof world>>) => ({
      accountId, id: randomUUID(), clientDeviceId: w.deviceId, gatewayDeviceId: w.deviceId, resourceId: w.resourceId, policyId: w.policyId, actorId,
      createdAt: new Date(), expiresAt: null,
    });
    const a = await world(t.a.token, "live-a");
    const b = await world(t.b.token, "live-b");
    const recorder = t.portal.realtime.recorder;
    await recorder.record(record(t.b.account.id, t.b.admin.id, b));
    await Promise.all([1, 2, 3].map(() => recorder.record(record(t.a.account.id, t.a.admin.id, a))));
    await stream.until((e) => e.event === "authorizations");
    // Gathered for a moment, so three records may arrive as one notice or a few; never B's.
    const deadline = Date.now() + 2000;
    const total = () => stream.events.filter((e) => e.event === "authorizations").reduce((n, e) => n + (e.data as { count: number }).count, 0);
    while (total() < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(total()).toBe(3);
  });

  run("announces the load its relays report, as GET /api/relays shows it, and not another account's relays' load", async () => {
    const stream = await Stream.open(t.portal.url, t.a.token);
    open.push(stream);
    await stream.until((e) => e.event === "ready");
    const relayOf = async (token: string, ipv4: string) => {
      const issued = (await t.call("POST", "/api/relay_tokens", { token, body: { name: `relay ${ipv4}` } })).body;
      const relay = await ScriptedDevice.connect(t.portal.url, "relay", issued.token as string);
      open.push(relay);
      await relay.join({ ipv4, port: 3478 });
      await relay.next("init");
      return { id: issued.id as string, relay };
    };
    const theirs = await relayOf(t.b.token, "198.51.100.31");
    const mine = await relayOf(t.a.token, "198.51.100.30");
    expect((await theirs.relay.request("load", { allocations: 9, channels: 9, bytes_per_second: 9 })).status).toBe("ok");
    expect((await mine.relay.request("load", { allocations: 2, channels: 1, bytes_per_second: 125_000 })).status).toBe("ok");
    const heard = await stream.until((e) => e.event === "relay_load");
    const listed = (await t.call("GET", "/api/relays?limit=500")).body.data.find((r: { id: string }) => r.id === mine.id);
    expect(heard.data).toEqual({ relay_id: mine.id, load: listed.load });
    expect(listed.load).toMatchObject({ allocations: 2, channels: 1, bytes_per_second: 125_000 });
    expect(stream.events.filter((e) => e.event === "relay_load").map((e) => (e.data as { relay_id: string }).relay_id)).toEqual([mine.id]);
  });

  run("refuses a user and a request without a token", async () => {
    const user = await t.actorWithToken(t.a, "user");
    expect((await t.call("GET", "/api/events", { token: user.token })).status).toBe(403);
    expect((await t.call("GET", "/api/events", { token: undefined })).status).toBe(401);
  });
});
