// Sign-in on both databases: password (argon2id, one 401 for every refusal, throttled per email),
// emailed one-time codes (always 202, single use, five tries), magic links (single use, 15 minutes),
// and the browser session they all end in: HttpOnly cookie, CSRF token demanded on changes, roles
// enforced, sign-out, password change. Plus the throttle in virtual time and the mail format.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createActor } from "../accounts/accounts.service.js";
import { ActorEntity, TokenEntity, type Actor } from "../database/entities.js";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";
import { CHALLENGE_KEEP_MS, createChallenge, challengeToken, MAGIC_LINK_TTL_MS } from "./challenges.js";
import { SignInChallengeEntity } from "./entities.js";
import { initAdmin } from "./init-admin.js";
import { formatMessage, Mailer, mboxEntry } from "./mail.js";
import { decodePhc, hashPassword, OWASP_ARGON2ID } from "./password-hash.js";
import { csrfTokenFor, parseToken } from "./secrets.js";
import { startSession } from "./sessions.js";
import { SignInThrottle } from "./sign-in-throttle.js";

interface Session {
  status: number;
  body: { csrf_token?: string; code?: string; detail?: string; [key: string]: unknown };
  headers: Headers;
  /** name → the whole Set-Cookie value. */
  setCookies: Map<string, string>;
  /** The Cookie header a browser would send back. */
  cookie: string;
  csrf: string;
}

function sessionOf(res: Response, body: unknown): Session {
  const setCookies = new Map(res.headers.getSetCookie().map((c) => [c.slice(0, c.indexOf("=")), c] as const));
  const value = (name: string): string => decodeURIComponent(setCookies.get(name)?.split(";")[0]?.slice(name.length + 1) ?? "");
  return {
    status: res.status,
    body: body as Session["body"],
    headers: res.headers,
    setCookies,
    cookie: `wardline_session=${encodeURIComponent(value("wardline_session"))}; wardline_csrf=${value("wardline_csrf")}`,
    csrf: value("wardline_csrf"),
  };
}

const PASSWORD = "correct horse battery staple";

describe.each(DATABASES)("sign-in on $name", (kind) => {
  let t: TestPortal;
  let dir: string;
  let mailbox: string;
  let user: Actor;
  const run = it.skipIf(kind.missing !== undefined);

  const post = async (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Session> => {
    const res = await fetch(`${t.portal.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
    const text = await res.text();
    return sessionOf(res, text === "" ? {} : JSON.parse(text));
  };
  const signIn = (email: string, password: string, slug = t.a.account.slug): Promise<Session> => post(`/api/auth/${slug}/password`, { email, password });
  /** A request made by a browser holding `s`'s cookies, with its CSRF header unless `csrf` is null. */
  const asBrowser = (s: Session, method: string, path: string, body?: unknown, csrf: string | null = s.csrf) =>
    t.call(method, path, { token: undefined, headers: { cookie: s.cookie, ...(csrf !== null ? { "x-csrf-token": csrf } : {}) }, ...(body !== undefined ? { body } : {}) });
  const newActor = async (type: Actor["type"], email: string, password: string | null = PASSWORD): Promise<Actor> =>
    createActor(t.a.scope, { type, name: email.split("@")[0]!, email, passwordHash: password === null ? null : await hashPassword(password) });

  beforeAll(async () => {
    if (kind.missing !== undefined) return;
    dir = mkdtempSync(join(tmpdir(), "wardline-sign-in-"));
    mailbox = join(dir, "mailbox");
    t = await startTestPortal(kind, { portal: { mail: { mailbox, from: "portal@wardline.test" } } });
    await t.a.scope.repository(ActorEntity).update(t.a.admin.id, { passwordHash: await hashPassword(PASSWORD) });
    user = await newActor("user", "User@Acme.test");
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The messages in the mailbox to `to`, oldest first, once there are at least `count`. */
  async function mailTo(to: string, count: number): Promise<string[]> {
    for (let i = 0; i < 100; i++) {
      let text = "";
      try {
        text = readFileSync(mailbox, "utf8");
      } catch {
        // not written yet
      }
      const messages = text.split(/^From portal@wardline\.test /m).filter((m) => m.includes(`\nTo: ${to}\n`));
      if (messages.length >= count) return messages;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no ${count} mails to ${to}`);
  }
  const codeIn = (message: string): string => /^ {4}(\d{8})$/m.exec(message)![1]!;

  run("a right password gives a browser session: HttpOnly session cookie, readable CSRF cookie, 7 days", async () => {
    const s = await signIn("ADMIN@acme.test", PASSWORD);
    expect(s.status).toBe(200);
    expect(s.body.csrf_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const session = s.setCookies.get("wardline_session")!;
    expect(session).toMatch(/^wardline_session=wlb_/);
    expect(session).toContain("HttpOnly");
    expect(session).toContain("SameSite=Lax");
    expect(session).toContain("Path=/");
    expect(session).not.toContain("Secure");
    const csrfCookie = s.setCookies.get("wardline_csrf")!;
    expect(csrfCookie).not.toContain("HttpOnly");
    expect(s.csrf).toBe(s.body.csrf_token);
    const token = parseToken(decodeURIComponent(session.split(";")[0]!.slice("wardline_session=".length)))!;
    expect(token.kind).toBe("browser");
    expect(csrfTokenFor(token.secret)).toBe(s.body.csrf_token);
    const row = await t.portal.database.getRepository(TokenEntity).findOneByOrFail({ id: token.id });
    expect(row.actorId).toBe(t.a.admin.id);
    expect(row.expiresAt!.getTime() - Date.now()).toBeGreaterThan(7 * 24 * 3600_000 - 60_000);
    expect(row.expiresAt!.getTime() - Date.now()).toBeLessThanOrEqual(7 * 24 * 3600_000);
    expect((await asBrowser(s, "GET", "/api/auth_providers")).status).toBe(200);
  });

  run("every refusal is the same 401: wrong password, unknown email or account, disabled, service account, API client, no password", async () => {
    const disabled = await newActor("user", "gone@acme.test");
    await t.a.scope.repository(ActorEntity).update(disabled.id, { disabledAt: new Date() });
    await newActor("service_account", "svc@acme.test");
    await newActor("api_client", "api@acme.test");
    await newActor("user", "nopass@acme.test", null);
    const refusals = [
      await signIn("admin@acme.test", `${PASSWORD}!`),
      await signIn("nobody@acme.test", PASSWORD),
      await signIn("admin@acme.test", PASSWORD, "no-such-account"),
      await signIn("admin@acme.test", PASSWORD, t.b.account.slug),
      await signIn("gone@acme.test", PASSWORD),
      await signIn("svc@acme.test", PASSWORD),
      await signIn("api@acme.test", PASSWORD),
      await signIn("nopass@acme.test", PASSWORD),
    ];
    for (const r of refusals) {
      expect(r.status).toBe(401);
      expect(r.headers.get("content-type")).toContain("application/problem+json");
      expect(r.setCookies.size).toBe(0);
      expect({ code: r.body.code, detail: r.body.detail }).toEqual({ code: refusals[0]!.body.code, detail: refusals[0]!.body.detail });
    }
    for (const [body, code] of [
      [{ email: "admin@acme.test" }, "password.required"],
      [{ email: "not-an-email", password: "x" }, "email.invalid"],
      [{ email: "admin@acme.test", password: 5 }, "password.not_string"],
      [{ email: "admin@acme.test", password: "x".repeat(1025) }, "password.too_long"],
      [{ email: "admin@acme.test", password: "x", extra: 1 }, "field.unknown"],
    ] as const) {
      const r = await post(`/api/auth/${t.a.account.slug}/password`, body);
      expect(r.status, code).toBe(422);
      expect(r.body.errors).toContainEqual(expect.objectContaining({ code }));
    }
  });

  run("ten failures for an email within 15 minutes make it 429, even with the right password; other emails go on", async () => {
    await newActor("user", "guessed@acme.test");
    for (let i = 0; i < 10; i++) expect((await signIn("guessed@acme.test", `wrong ${i}`)).status).toBe(401);
    const blocked = await signIn("GUESSED@acme.test", PASSWORD);
    expect(blocked.status).toBe(429);
    expect(blocked.body.code).toBe("too_many_attempts");
    expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(800);
    expect((await signIn("admin@acme.test", PASSWORD)).status).toBe(200);
    // Unknown emails are counted the same way, so the 429 does not tell them apart either.
    for (let i = 0; i < 10; i++) await signIn("ghost@acme.test", "x");
    expect((await signIn("ghost@acme.test", "x")).status).toBe(429);
  });

  run("a cookie-authenticated change needs the session's CSRF token; a user's session cannot use admin routes", async () => {
    const admin = await signIn("admin@acme.test", PASSWORD);
    const provider = { name: "csrf-test", issuer: "https://idp.example.com", client_id: "c", client_secret: "s" };
    const without = await asBrowser(admin, "POST", "/api/auth_providers", provider, null);
    expect(without.status).toBe(403);
    expect(without.body.code).toBe("csrf_failed");
    const wrong = await asBrowser(admin, "POST", "/api/auth_providers", provider, csrfTokenFor("another session"));
    expect(wrong.body.code).toBe("csrf_failed");
    expect((await t.call("GET", "/api/auth_providers")).body.data.map((p: { name: string }) => p.name)).not.toContain("csrf-test");
    const made = await asBrowser(admin, "POST", "/api/auth_providers", provider);
    expect(made.status).toBe(201);

    const userSession = await signIn("user@acme.test", PASSWORD);
    expect(userSession.status).toBe(200);
    for (const [method, path] of [
      ["GET", "/api/auth_providers"],
      ["POST", "/api/auth_providers"],
      ["DELETE", `/api/auth_providers/${made.body.id}`],
    ] as const) {
      const res = await asBrowser(userSession, method, path, method === "POST" ? provider : undefined);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.code).toBe("forbidden");
    }
  });

  run("sign-out revokes the session and clears its cookies", async () => {
    const s = await signIn("user@acme.test", PASSWORD);
    const id = parseToken(decodeURIComponent(s.cookie.split(";")[0]!.slice("wardline_session=".length)))!.id;
    expect((await asBrowser(s, "POST", "/api/auth/sign_out", undefined, null)).status).toBe(403);
    const out = await asBrowser(s, "POST", "/api/auth/sign_out");
    expect(out.status).toBe(204);
    expect(out.headers.getSetCookie().some((c) => /^wardline_session=;.*Max-Age=0/.test(c))).toBe(true);
    expect(await t.portal.database.getRepository(TokenEntity).findOneBy({ id })).toBeNull();
    expect((await asBrowser(s, "PUT", "/api/me/password", { current_password: PASSWORD, new_password: "x".repeat(20) })).status).toBe(401);
    // An API token is not a session: sign-out is for browser sessions.
    expect((await t.call("POST", "/api/auth/sign_out")).status).toBe(403);
  });

  run("a password change needs the current password, and signs out the actor's other sessions", async () => {
    const changer = await newActor("user", "changer@acme.test");
    const here = await signIn("changer@acme.test", PASSWORD);
    const elsewhere = await signIn("changer@acme.test", PASSWORD);
    const change = (body: unknown) => asBrowser(here, "PUT", "/api/me/password", body);
    const wrong = await change({ current_password: "nope", new_password: "a new long passphrase" });
    expect(wrong.status).toBe(422);
    expect(wrong.body.errors[0].code).toBe("current_password.incorrect");
    expect((await change({ current_password: PASSWORD, new_password: "short" })).body.errors[0].code).toBe("new_password.too_short");
    expect((await change({ current_password: PASSWORD })).body.errors[0].code).toBe("new_password.required");
    expect((await change({ current_password: PASSWORD, new_password: "a new long passphrase" })).status).toBe(204);
    const stored = (await t.a.scope.repository(ActorEntity).get(changer.id))!.passwordHash!;
    expect(decodePhc(stored)!.params).toEqual(OWASP_ARGON2ID);
    expect((await signIn("changer@acme.test", PASSWORD)).status).toBe(401);
    expect((await signIn("changer@acme.test", "a new long passphrase")).status).toBe(200);
    expect((await asBrowser(here, "GET", "/api/auth_providers")).status).toBe(403); // still signed in, as a user
    expect((await asBrowser(elsewhere, "GET", "/api/auth_providers")).status).toBe(401);
  });

  run("an emailed code: always 202, mailed only to a user of the account, single use, replaced by the next", async () => {
    const challenges = t.a.scope.repository(SignInChallengeEntity);
    const before = await challenges.count();
    for (const [slug, email] of [
      [t.a.account.slug, "nobody@acme.test"],
      [t.a.account.slug, "svc@acme.test"],
      ["no-such-account", "user@acme.test"],
      [t.b.account.slug, "user@acme.test"],
    ] as const) {
      const res = await post(`/api/auth/${slug}/email`, { email });
      expect(res.status, `${slug} ${email}`).toBe(202);
    }
    expect((await post(`/api/auth/${t.a.account.slug}/email`, { email: "nope" })).status).toBe(422);

    expect((await post(`/api/auth/${t.a.account.slug}/email`, { email: "user@acme.test" })).status).toBe(202);
    const [first] = await mailTo("User@Acme.test", 1);
    // Mail goes out after the answer: by the time the user's has, the requests before it are done.
    await new Promise((r) => setTimeout(r, 200));
    expect(await challenges.count()).toBe(before + 1);
    expect(readFileSync(mailbox, "utf8").match(/^To: /gm)).toHaveLength(1);
    expect(first).toMatch(/^From: portal@wardline\.test$/m);
    expect(first).toMatch(/^Subject: Your Wardline sign-in code for /m);
    expect(first).toMatch(/^Message-ID: <[^>]+@wardline>$/m);
    expect(first).toMatch(/^Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000$/m);
    const firstCode = codeIn(first!);
    const row = (await challenges.list({ where: { actorId: user.id, kind: "email_code" } }))[0]!;
    expect(JSON.stringify(row)).not.toContain(firstCode);

    // A second request replaces the first code.
    expect((await post(`/api/auth/${t.a.account.slug}/email`, { email: "USER@acme.test" })).status).toBe(202);
    const secondCode = codeIn((await mailTo("User@Acme.test", 2))[1]!);
    const verify = (code: string, email = "user@acme.test") => post(`/api/auth/${t.a.account.slug}/email/verify`, { email, code });
    if (secondCode !== firstCode) expect((await verify(firstCode)).status).toBe(401);
    expect((await verify(secondCode, "nobody@acme.test")).status).toBe(401);
    const signedIn = await verify(secondCode);
    expect(signedIn.status).toBe(200);
    expect(signedIn.body.csrf_token).toBe(signedIn.csrf);
    expect((await asBrowser(signedIn, "PUT", "/api/me/password", { current_password: PASSWORD, new_password: "another long passphrase" })).status).toBe(204);
    expect((await verify(secondCode)).status).toBe(401);
  });

  run("a code dies after five wrong tries, and after ten minutes", async () => {
    const tries = await newActor("user", "tries@acme.test");
    await post(`/api/auth/${t.a.account.slug}/email`, { email: "tries@acme.test" });
    const code = codeIn((await mailTo("tries@acme.test", 1))[0]!);
    const wrongCode = String((Number(code) + 1) % 1e8).padStart(8, "0");
    const verify = (c: string) => post(`/api/auth/${t.a.account.slug}/email/verify`, { email: "tries@acme.test", code: c });
    for (let i = 0; i < 5; i++) expect((await verify(wrongCode)).status).toBe(401);
    expect((await verify(code)).status).toBe(401);

    await post(`/api/auth/${t.a.account.slug}/email`, { email: "tries@acme.test" });
    const late = codeIn((await mailTo("tries@acme.test", 2))[1]!);
    const challenges = t.a.scope.repository(SignInChallengeEntity);
    const [live] = await challenges.list({ where: { actorId: tries.id, kind: "email_code" }, order: { createdAt: "DESC" }, take: 1 });
    await challenges.update(live!.id, { expiresAt: new Date(Date.now() - 1000) });
    expect((await verify(late)).status).toBe(401);
  });

  run("a magic link signs in once, within 15 minutes, on its own account only", async () => {
    const init = await initAdmin(t.portal.database, { email: "admin@acme.test", slug: t.a.account.slug, publicUrl: t.portal.url });
    expect(init.createdAccount).toBe(false);
    expect(init.createdAdmin).toBe(false);
    expect(init.admin.id).toBe(t.a.admin.id);
    expect(init.link).toMatch(new RegExp(`^${t.portal.url}/api/auth/${t.a.account.slug}/magic\\?token=`));
    const open = (url: string) => fetch(url, { redirect: "manual" }).then(async (res) => sessionOf(res, await res.text()));
    const used = await open(init.link);
    expect(used.status).toBe(302);
    expect(used.headers.get("location")).toBe(`${t.portal.url}/`);
    expect((await asBrowser(used, "GET", "/api/auth_providers")).status).toBe(200);
    expect((await open(init.link)).status).toBe(401);
    // initAdmin also set a new password.
    expect((await signIn("admin@acme.test", PASSWORD)).status).toBe(401);
    expect((await signIn("admin@acme.test", init.password)).status).toBe(200);
    await t.a.scope.repository(ActorEntity).update(t.a.admin.id, { passwordHash: await hashPassword(PASSWORD) });

    const scope = t.a.scope;
    const expired = await createChallenge(scope, { kind: "magic_link", actorId: t.a.admin.id, ttlMs: -1000 });
    expect((await open(`${t.portal.url}/api/auth/${t.a.account.slug}/magic?token=${challengeToken(expired.row, expired.secret)}`)).status).toBe(401);
    const other = await createChallenge(scope, { kind: "magic_link", actorId: t.a.admin.id, ttlMs: MAGIC_LINK_TTL_MS });
    const token = challengeToken(other.row, other.secret);
    expect((await open(`${t.portal.url}/api/auth/${t.b.account.slug}/magic?token=${token}`)).status).toBe(401);
    expect((await open(`${t.portal.url}/api/auth/${t.a.account.slug}/magic?token=${token.slice(0, -1)}x`)).status).toBe(401);
    expect((await open(`${t.portal.url}/api/auth/${t.a.account.slug}/magic?token=garbage`)).status).toBe(401);
    expect((await open(`${t.portal.url}/api/auth/${t.a.account.slug}/magic`)).status).toBe(401);
    expect((await open(`${t.portal.url}/api/auth/${t.a.account.slug}/magic?token=${token}`)).status).toBe(302);

    // A new challenge sweeps the account's challenges that expired over a day ago, and no others.
    const challenges = scope.repository(SignInChallengeEntity);
    const stale = await createChallenge(scope, { kind: "magic_link", actorId: t.a.admin.id, ttlMs: -CHALLENGE_KEEP_MS - 60_000 });
    const staleB = await createChallenge(t.b.scope, { kind: "magic_link", actorId: t.b.admin.id, ttlMs: -CHALLENGE_KEEP_MS - 60_000 });
    await createChallenge(scope, { kind: "magic_link", actorId: t.a.admin.id, ttlMs: MAGIC_LINK_TTL_MS });
    expect(await challenges.get(stale.row.id)).toBeNull();
    expect(await challenges.get(expired.row.id), "expired within the day: kept").not.toBeNull();
    expect(await t.b.scope.repository(SignInChallengeEntity).get(staleB.row.id), "another account's: not this sweep's").not.toBeNull();
  });

  run("cookies are Secure when the public URL is https", async () => {
    const set: string[] = [];
    const log = () => {};
    await startSession(t.portal.database, { publicUrl: "https://portal.example.com", mail: { from: "x@y.z" }, log }, t.a.admin, "test", { append: (_f, v) => set.push(v) });
    expect(set).toHaveLength(2);
    for (const c of set) expect(c).toMatch(/; Secure$/);
  });
});

describe("sign-in throttle", () => {
  it("allows `limit` failures per window per key, then says how long to wait; success clears", () => {
    let now = 0;
    const throttle = new SignInThrottle(3, 60_000, () => now);
    for (let i = 0; i < 3; i++) {
      expect(throttle.blockedFor("a")).toBe(0);
      throttle.record("a");
      now += 1000;
    }
    expect(throttle.blockedFor("a")).toBe(57);
    expect(throttle.blockedFor("b")).toBe(0);
    now = 60_001;
    expect(throttle.blockedFor("a")).toBe(0); // the first failure aged out
    throttle.record("a");
    expect(throttle.blockedFor("a")).toBeGreaterThan(0);
    throttle.clear("a");
    expect(throttle.blockedFor("a")).toBe(0);
  });
});

describe("mail", () => {
  it("formats an RFC 5322 message with CRLF ends, refuses header injection, and quotes From_ lines in mbox", () => {
    const date = new Date("2026-01-02T03:04:05Z");
    const text = formatMessage("portal@x.test", { to: "a@b.test", subject: "Code", text: "hello\nFrom here\n" }, date, "id@x");
    expect(text).toBe(
      "From: portal@x.test\r\nTo: a@b.test\r\nSubject: Code\r\nDate: Fri, 02 Jan 2026 03:04:05 +0000\r\nMessage-ID: <id@x>\r\nMIME-Version: 1.0\r\n" +
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nhello\r\nFrom here\r\n",
    );
    expect(() => formatMessage("portal@x.test", { to: "a@b.test\r\nBcc: c@d.test", subject: "x", text: "" }, date)).toThrow();
    expect(() => formatMessage("portal@x.test", { to: "a@b.test", subject: "x\r\nBcc: c@d.test", text: "" }, date)).toThrow();
    const entry = mboxEntry("portal@x.test", text, date);
    expect(entry.startsWith("From portal@x.test Fri Jan 02 03:04:05 2026\nFrom: portal@x.test\n")).toBe(true);
    expect(entry).toContain("\n>From here\n");
    expect(entry.endsWith("\n\n")).toBe(true);
  });

  it("hands the message to the SMTP relay of WARDLINE_SMTP_URL: envelope, credentials and the same RFC 5322 text", async () => {
    // A relay that speaks just enough SMTP (RFC 5321) and AUTH PLAIN, and keeps what it was told.
    const said: string[] = [];
    let data = "";
    const server = createServer((socket) => {
      let inData = false;
      let buffer = "";
      socket.write("220 test ESMTP\r\n");
      socket.on("data", (chunk) => {
        buffer += chunk.toString("utf8");
        let end: number;
        while ((end = buffer.indexOf("\r\n")) >= 0) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (inData) {
            if (line === ".") {
              inData = false;
              socket.write("250 queued\r\n");
            } else data += `${line.replace(/^\./, "")}\r\n`;
            continue;
          }
          said.push(line);
          const verb = line.split(" ")[0]!.toUpperCase();
          if (verb === "EHLO") socket.write("250-test\r\n250 AUTH PLAIN\r\n");
          else if (verb === "AUTH") socket.write("235 ok\r\n");
          else if (verb === "DATA") {
            inData = true;
            socket.write("354 go on\r\n");
          } else if (verb === "QUIT") socket.end("221 bye\r\n");
          else socket.write("250 ok\r\n");
        }
      });
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    const port = (server.address() as AddressInfo).port;
    const date = new Date("2026-01-02T03:04:05Z");
    const mailer = new Mailer({ smtpUrl: `smtp://relay-user:relay-pass@127.0.0.1:${port}`, from: "portal@x.test" }, () => {}, () => date);
    try {
      await mailer.send({ to: "a@b.test", subject: "Code", text: "12345678\n.leading dot\n" });
    } finally {
      mailer.close();
      server.close();
    }
    expect(said).toContain("MAIL FROM:<portal@x.test>");
    expect(said).toContain("RCPT TO:<a@b.test>");
    expect(said.find((l) => l.startsWith("AUTH PLAIN"))).toBe(`AUTH PLAIN ${Buffer.from("\0relay-user\0relay-pass").toString("base64")}`);
    expect(data).toMatch(/^From: portal@x\.test\r\nTo: a@b\.test\r\nSubject: Code\r\nDate: Fri, 02 Jan 2026 03:04:05 \+0000\r\n/);
    expect(data).toContain("\r\n\r\n12345678\r\n.leading dot\r\n");
  });
});
