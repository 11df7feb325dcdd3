// The gate in front of every route, on both databases: what a missing, malformed, wrong, expired or
// revoked token gets; a disabled actor's token; token kinds and roles a route does not take; the
// per-token rate limit. Plus the token format and the rate limiter itself, in virtual time.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import { createActor, issueToken } from "../accounts/accounts.service.js";
import { ActorEntity, TokenEntity } from "../database/entities.js";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";
import { RateLimiter } from "./rate-limit.js";
import { csrfTokenFor, hashSecret, issueSecret, parseToken, secretMatches } from "./secrets.js";

beforeEach(reportSeedOnFailure);

describe("tokens", () => {
  it("parse back to their kind, id and secret, and only the secret's hash matches", () => {
    for (const kind of ["browser", "client", "gateway", "relay", "api"] as const) {
      const issued = issueSecret(kind);
      const parsed = parseToken(issued.token);
      expect(parsed).toMatchObject({ kind, id: issued.id });
      expect(secretMatches(parsed!.secret, issued.secretHash)).toBe(true);
      expect(secretMatches(`${parsed!.secret.slice(0, -1)}A`, issued.secretHash) && !parsed!.secret.endsWith("A")).toBe(false);
      expect(issued.secretHash).toBe(hashSecret(parsed!.secret));
      expect(issued.token).not.toContain(issued.secretHash);
    }
    expect(issueSecret("api").token).not.toBe(issueSecret("api").token);
    expect(csrfTokenFor("a")).not.toBe(csrfTokenFor("b"));
  });

  it("property: random and mutated strings never throw, and only well-formed ones parse", () => {
    const r = rng("token parse");
    const valid = issueSecret("api").token;
    for (let i = 0; i < 5000; i++) {
      let text: string;
      if (r.bool()) {
        text = Buffer.from(r.bytes(r.int(0, 120))).toString(r.bool() ? "latin1" : "base64url");
      } else {
        const chars = [...valid];
        chars[r.int(0, chars.length - 1)] = String.fromCharCode(r.int(0, 127));
        text = chars.join("");
      }
      const parsed = parseToken(text);
      // Whatever parses is exactly a token: re-assembled from its parts, it is the input.
      if (parsed !== undefined) expect(`${text.slice(0, 3)}_${parsed.id}.${parsed.secret}`).toBe(text);
      expect(secretMatches(text, hashSecret("x"))).toBe(text === "x");
    }
    expect(secretMatches("x", "not hex")).toBe(false);
  });
});

describe("rate limiter", () => {
  it("allows a burst, then the sustained rate, per key, in virtual time", () => {
    let now = 0;
    const limiter = new RateLimiter({ burst: 5, perSecond: 2 }, () => now);
    for (let i = 0; i < 5; i++) expect(limiter.take("a")).toBe(0);
    expect(limiter.take("a")).toBeCloseTo(0.5);
    expect(limiter.take("b"), "another key has its own bucket").toBe(0);
    now += 499;
    expect(limiter.take("a")).toBeGreaterThan(0);
    now += 2;
    expect(limiter.take("a")).toBe(0);
    // Over 10 virtual seconds of asking every 10 ms: the burst plus 2 per second, no more.
    let allowed = 0;
    for (let t = 0; t < 1000; t++) {
      now += 10;
      if (limiter.take("c") === 0) allowed++;
    }
    expect(allowed).toBeGreaterThanOrEqual(5 + 19);
    expect(allowed).toBeLessThanOrEqual(5 + 20);
    expect(() => new RateLimiter({ burst: 0, perSecond: 1 })).toThrow(RangeError);
  });
});

describe.each(DATABASES)("the API gate on $name", (kind) => {
  let t: TestPortal;
  beforeAll(async () => {
    if (kind.missing === undefined) t = await startTestPortal(kind, { rateLimit: { burst: 40, perSecond: 1 } });
  }, 60_000);
  afterAll(async () => t?.close());
  const run = it.skipIf(kind.missing !== undefined);

  const expect401 = async (token: string | undefined, headers: Record<string, string> = {}): Promise<void> => {
    const res = await t.call("GET", "/api/sites", { token, headers });
    expect(res.status, String(token)).toBe(401);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(res.body.code).toBe("unauthenticated");
  };

  run("refuses a missing, malformed, unknown, tampered, expired or revoked token with one 401", async () => {
    await expect401(undefined);
    await expect401(undefined, { authorization: "Basic YTpi" });
    await expect401("nonsense");
    await expect401(issueSecret("api").token);
    const good = t.a.token;
    const parsed = parseToken(good)!;
    const flipped = parsed.secret[0] === "A" ? "B" : "A";
    await expect401(`wla_${parsed.id}.${flipped}${parsed.secret.slice(1)}`);
    await expect401(`wlc_${parsed.id}.${parsed.secret}`);

    const expiring = await issueToken(t.a.scope, { kind: "api", actorId: t.a.admin.id, expiresAt: new Date(Date.now() + 60_000) });
    expect((await t.call("GET", "/api/sites", { token: expiring.token })).status).toBe(200);
    await t.portal.database.getRepository(TokenEntity).update({ id: expiring.row.id }, { expiresAt: new Date(Date.now() - 1000) });
    await expect401(expiring.token);

    const revoked = await issueToken(t.a.scope, { kind: "api", actorId: t.a.admin.id });
    expect((await t.call("GET", "/api/sites", { token: revoked.token })).status).toBe(200);
    await t.a.scope.repository(TokenEntity).delete(revoked.row.id);
    await expect401(revoked.token);
  });

  run("a disabled actor's tokens stop working at once, and work again when it is enabled", async () => {
    const admin = await createActor(t.a.scope, { type: "admin", name: "Temp", email: "temp@acme.test" });
    const { token } = await issueToken(t.a.scope, { kind: "api", actorId: admin.id });
    expect((await t.call("GET", "/api/sites", { token })).status).toBe(200);
    await t.a.scope.repository(ActorEntity).update(admin.id, { disabledAt: new Date() });
    await expect401(token);
    await t.a.scope.repository(ActorEntity).update(admin.id, { disabledAt: null });
    expect((await t.call("GET", "/api/sites", { token })).status).toBe(200);
  });

  run("a route refuses token kinds and roles it does not take, with 403", async () => {
    const user = await t.actorWithToken(t.a, "user");
    const res = await t.call("POST", "/api/sites", { token: user.token, body: { name: "by a user" } });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("forbidden");
    const site = (await t.call("POST", "/api/sites", { body: { name: "gw-site" } })).body;
    const gateway = (await t.call("POST", `/api/sites/${site.id}/gateway_tokens`, { body: {} })).body.token as string;
    expect((await t.call("GET", "/api/sites", { token: gateway })).status).toBe(403);
    // A session cookie must hold a browser session, not an API token.
    const cookie = await t.call("GET", "/api/sites", { token: undefined, headers: { cookie: `wardline_session=${t.a.token}` } });
    expect(cookie.status).toBe(401);
  });

  run("a browser session in a cookie reads freely but changes only with its CSRF token", async () => {
    const session = await issueToken(t.a.scope, { kind: "browser", actorId: t.a.admin.id });
    const cookie = `wardline_session=${encodeURIComponent(session.token)}`;
    expect((await t.call("GET", "/api/sites", { token: undefined, headers: { cookie } })).status).toBe(200);
    const without = await t.call("POST", "/api/sites", { token: undefined, headers: { cookie }, body: { name: "csrf-less" } });
    expect(without.status).toBe(403);
    expect(without.body.code).toBe("csrf_failed");
    const wrong = await t.call("POST", "/api/sites", { token: undefined, headers: { cookie, "x-csrf-token": csrfTokenFor("other") }, body: { name: "csrf-wrong" } });
    expect(wrong.status).toBe(403);
    const csrf = csrfTokenFor(parseToken(session.token)!.secret);
    const ok = await t.call("POST", "/api/sites", { token: undefined, headers: { cookie, "x-csrf-token": csrf }, body: { name: "csrf-ok" } });
    expect(ok.status).toBe(201);
  });

  run("limits each token's request rate with 429 and Retry-After, leaving other tokens alone", async () => {
    const busy = await t.actorWithToken(t.a, "api_client");
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) statuses.push((await t.call("GET", "/api/sites?limit=1", { token: busy.token })).status);
    // The burst of 40, plus the one a second that refills while the loop runs.
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(40);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(45);
    const limited = await t.call("GET", "/api/sites?limit=1", { token: busy.token });
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe("rate_limited");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const other = await t.actorWithToken(t.a, "api_client");
    expect((await t.call("GET", "/api/sites?limit=1", { token: other.token })).status).toBe(200);
  });

  run("limits routes that take no token per client address", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) statuses.push((await t.call("GET", "/api/health", { token: undefined })).status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(40);
    const limited = await t.call("GET", "/api/health", { token: undefined });
    expect(limited.status).toBe(429);
    expect(limited.body.detail).toMatch(/client address/);
    // Tokens are counted on their own: the address being over its rate does not stop them.
    expect((await t.call("GET", "/api/sites?limit=1")).status).toBe(200);
  });
});
