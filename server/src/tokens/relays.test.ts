// GET /api/relays on both databases: every relay token is a relay, listed before it first joins
// (offline, no addresses); a relay that joins over the WebSocket with its token is listed online with
// the addresses it announced and the load it reports, then offline (addresses kept) once it leaves; another account's relays
// never appear; only admins may ask.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";
import { ScriptedDevice } from "../testing/device.js";
import type { RelayView } from "./relays.controller.js";

describe.each(DATABASES)("relays API on $name", (kind) => {
  let t: TestPortal;
  const open: ScriptedDevice[] = [];
  beforeAll(async () => {
    if (kind.missing === undefined) t = await startTestPortal(kind);
  }, 60_000);
  afterAll(async () => {
    for (const device of open) await device.close();
    await t?.close();
  });
  const run = it.skipIf(kind.missing !== undefined);

  const relays = async (token?: string): Promise<RelayView[]> => {
    const res = await t.call<{ data: RelayView[]; next_cursor: string | null }>("GET", "/api/relays?limit=500", token === undefined ? {} : { token });
    expect(res.status).toBe(200);
    return res.body.data;
  };
  const relay = async (id: string): Promise<RelayView | undefined> => (await relays()).find((r) => r.id === id);

  run("lists a relay token's relay offline, online with its addresses once it joins, offline when it leaves", async () => {
    const issued = await t.call("POST", "/api/relay_tokens", { body: { name: "relay-fra" } });
    expect(issued.status).toBe(201);
    expect(await relay(issued.body.id)).toEqual(
      expect.objectContaining({ id: issued.body.id, name: "relay-fra", online: false, ipv4: null, ipv6: null, port: null, announced_at: null, created_at: issued.body.created_at }),
    );

    const socket = await ScriptedDevice.connect(t.portal.url, "relay", issued.body.token);
    open.push(socket);
    expect((await socket.join({ ipv4: "203.0.113.9", ipv6: "2001:db8::9", port: 3478 })).status).toBe("ok");
    await socket.next("init");
    await expect.poll(async () => (await relay(issued.body.id))?.online, { timeout: 10_000 }).toBe(true);
    const joined = (await relay(issued.body.id))!;
    expect(joined).toMatchObject({ ipv4: "203.0.113.9", ipv6: "2001:db8::9", port: 3478 });
    expect(Date.parse(joined.announced_at!)).toBeGreaterThan(Date.now() - 60_000);
    expect(joined).not.toHaveProperty("token");
    expect(joined.load, "no report yet").toBeNull();

    // Its load, as it reports it: a bad report is refused with the field named, a good one shows.
    const bad = await socket.request("load", { allocations: -1, channels: 0, bytes_per_second: 0 });
    expect(bad).toMatchObject({ status: "error", response: { reason: "range", path: "payload.allocations" } });
    expect((await socket.request("load", { allocations: 3, channels: 5, bytes_per_second: 2 ** 40 })).status).toBe("ok");
    const loaded = (await relay(issued.body.id))!.load!;
    expect(loaded).toMatchObject({ allocations: 3, channels: 5, bytes_per_second: 2 ** 40 });
    expect(Date.parse(loaded.reported_at)).toBeGreaterThan(Date.now() - 60_000);
    // A second report within half a second is answered but not written; a later one is.
    expect((await socket.request("load", { allocations: 4, channels: 5, bytes_per_second: 0 })).status).toBe("ok");
    expect((await relay(issued.body.id))!.load).toMatchObject({ allocations: 3 });
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect((await socket.request("load", { allocations: 4, channels: 6, bytes_per_second: 0 })).status).toBe("ok");
    expect((await relay(issued.body.id))!.load).toMatchObject({ allocations: 4, channels: 6, bytes_per_second: 0 });

    await socket.close();
    await expect.poll(async () => (await relay(issued.body.id))?.online, { timeout: 10_000 }).toBe(false);
    expect(await relay(issued.body.id), "where it was stays known").toMatchObject({ ipv4: "203.0.113.9", ipv6: "2001:db8::9", port: 3478 });

    // Joining again starts afresh: the last session's load is gone until the relay reports again.
    const again = await ScriptedDevice.connect(t.portal.url, "relay", issued.body.token);
    open.push(again);
    expect((await again.join({ ipv4: "203.0.113.9", port: 3478 })).status).toBe("ok");
    await again.next("init");
    await expect.poll(async () => (await relay(issued.body.id))?.online, { timeout: 10_000 }).toBe(true);
    expect((await relay(issued.body.id))!.load).toBeNull();
    await again.close();

    // A revoked token is no relay any more, and its addresses go with it.
    expect((await t.call("DELETE", `/api/tokens/${issued.body.id}`)).status).toBe(204);
    expect(await relay(issued.body.id)).toBeUndefined();
  });

  run("never shows another account's relays, online or not, and answers only admins", async () => {
    const mine = (await t.call("POST", "/api/relay_tokens", { body: { name: "relay-a" } })).body;
    const theirs = await t.call("POST", "/api/relay_tokens", { token: t.b.token, body: { name: "relay-b" } });
    expect(theirs.status).toBe(201);
    const socket = await ScriptedDevice.connect(t.portal.url, "relay", theirs.body.token);
    open.push(socket);
    expect((await socket.join({ ipv4: "198.51.100.20", port: 3478 })).status).toBe("ok");
    await socket.next("init");
    await expect.poll(async () => (await relays(t.b.token)).find((r) => r.id === theirs.body.id)?.online, { timeout: 10_000 }).toBe(true);

    const seenByA = await relays();
    expect(seenByA.map((r) => r.id)).toContain(mine.id);
    expect(seenByA.map((r) => r.id)).not.toContain(theirs.body.id);
    expect(JSON.stringify(seenByA)).not.toContain("198.51.100.20");
    const seenByB = await relays(t.b.token);
    expect(seenByB.map((r) => r.id)).toEqual([theirs.body.id]);
    expect(seenByB[0]).toMatchObject({ name: "relay-b", online: true, ipv4: "198.51.100.20", ipv6: null, port: 3478 });

    const user = await t.actorWithToken(t.a, "user");
    expect((await t.call("GET", "/api/relays", { token: user.token })).status).toBe(403);
    expect((await t.call("GET", "/api/relays", { token: undefined })).status).toBe(401);
    const doc = (await (await fetch(`${t.portal.url}/api/openapi.json`)).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    expect(Object.keys(doc.paths["/api/relays"]?.get?.responses ?? {})).toEqual(expect.arrayContaining(["200", "401", "403", "422"]));
    await socket.close();
  });

  run("pages through relays with a cursor and refuses a bad page query", async () => {
    for (let i = 0; i < 3; i++) expect((await t.call("POST", "/api/relay_tokens", { body: { name: `page-${i}` } })).status).toBe(201);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { status: number; body: { data: RelayView[]; next_cursor: string | null } } = await t.call("GET", `/api/relays?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.data.map((r) => r.id));
      cursor = res.body.next_cursor;
    } while (cursor !== null);
    expect(seen).toEqual((await relays()).map((r) => r.id));
    expect(seen.length).toBeGreaterThanOrEqual(3);
    for (const query of ["limit=0", "limit=x", "cursor=nope"]) {
      const res = await t.call("GET", `/api/relays?${query}`);
      expect(res.status, query).toBe(422);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
    }
  });
});
