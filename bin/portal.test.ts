// `wardline portal`: its help, and --init-admin on an embedded database: it creates the account and
// its admin, prints a password and a one-time link that both sign in once the portal runs, resets the
// password when run again, and refuses bad input with exit 2 before touching anything.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AccountEntity } from "../server/src/database/entities.js";
import { startPortal } from "../server/src/portal.js";
import { captureIo } from "../test/support/cli.js";
import { main } from "./cli.js";
import { PORTAL_HELP, portalCommand } from "./portal.js";

describe("wardline portal: help", () => {
  it("documents --init-admin, --account, --public-url and the mail settings", async () => {
    for (const argv of [["portal", "--help"], ["help", "portal"]]) {
      const io = captureIo();
      expect(await main(argv, io)).toBe(0);
      expect(io.out).toBe(PORTAL_HELP);
    }
    for (const word of ["--init-admin <email>", "--account <slug>", "--public-url <url>", "--geoip <file>", "WARDLINE_GEOIP", "WARDLINE_PUBLIC_URL", "WARDLINE_SMTP_URL", "WARDLINE_MAIL_FROM", "mailbox", "15 minutes"]) {
      expect(PORTAL_HELP).toContain(word);
    }
  });
});

describe("wardline portal --init-admin", () => {
  const dir = mkdtempSync(join(tmpdir(), "wardline-init-admin-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const PUBLIC = "https://portal.example.com";

  async function init(...argv: string[]): Promise<{ code: number; out: string; err: string; password: string; link: string }> {
    const io = captureIo();
    const code = await portalCommand(["--data-dir", dir, "--public-url", `${PUBLIC}/`, ...argv], io, {});
    return { code, out: io.out, err: io.err, password: /^password {2}(\S+)$/m.exec(io.out)?.[1] ?? "", link: /^sign in {3}(\S+)$/m.exec(io.out)?.[1] ?? "" };
  }

  it("refuses a bad email, slug or public URL with exit 2", async () => {
    for (const argv of [["--init-admin", "not-an-email"], ["--init-admin", "a@b.test", "--account", "Bad Slug"], ["--init-admin", "a@b.test", "--public-url", "ftp://x"]]) {
      const io = captureIo();
      expect(await portalCommand(["--data-dir", dir, ...argv], io, {}), argv.join(" ")).toBe(2);
      expect(io.err).toMatch(/^wardline portal: /);
      expect(io.out).toBe("");
    }
  }, 60_000);

  it("refuses a GeoIP database it cannot read or use with exit 2, before starting", async () => {
    const junk = join(dir, "junk.mmdb");
    writeFileSync(junk, "not a MaxMind database");
    for (const [argv, message] of [
      [["--geoip", join(dir, "missing.mmdb")], /cannot read the GeoIP database/],
      [["--geoip", junk], /is not a usable GeoIP database: no metadata marker/],
    ] as const) {
      const io = captureIo();
      expect(await portalCommand(["--data-dir", dir, "--port", "0", ...argv], io, {}), argv.join(" ")).toBe(2);
      expect(io.err).toMatch(message);
    }
    const io = captureIo();
    expect(await portalCommand(["--data-dir", dir, "--port", "0"], io, { WARDLINE_GEOIP: junk })).toBe(2);
    expect(io.err).toMatch(/junk\.mmdb is not a usable GeoIP database/);
  });

  it("creates the account and admin, prints a password and a link that sign in, and resets the password when run again", async () => {
    const first = await init("--init-admin", "Root@Example.test");
    expect(first.code, first.err).toBe(0);
    expect(first.out).toMatch(/^account {3}default \(created\)$/m);
    expect(first.out).toMatch(/^admin {5}Root@Example\.test \(created\)$/m);
    expect(first.password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(first.link).toMatch(/^https:\/\/portal\.example\.com\/api\/auth\/default\/magic\?token=[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}$/);

    const second = await init("--init-admin", "root@example.test");
    expect(second.code, second.err).toBe(0);
    expect(second.out).toMatch(/^admin {5}Root@Example\.test \(existing; password reset\)$/m);
    expect(second.password).not.toBe(first.password);

    const other = await init("--init-admin", "ops@acme.test", "--account", "acme-corp");
    expect(other.code, other.err).toBe(0);

    const portal = await startPortal({ host: "127.0.0.1", port: 0, database: { dataDir: dir }, publicUrl: PUBLIC });
    try {
      const accounts = await portal.database.getRepository(AccountEntity).find({ order: { slug: "ASC" } });
      expect(accounts.map((a) => [a.slug, a.name])).toEqual([
        ["acme-corp", "Acme Corp"],
        ["default", "Default"],
      ]);
      const signIn = (password: string) =>
        fetch(`${portal.url}/api/auth/default/password`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "root@example.test", password }) });
      expect((await signIn(first.password)).status).toBe(401);
      const ok = await signIn(second.password);
      expect(ok.status).toBe(200);
      expect(ok.headers.getSetCookie().join("\n")).toMatch(/wardline_session=.*Secure/);
      const viaLink = (link: string) => fetch(`${portal.url}${new URL(link).pathname}${new URL(link).search}`, { redirect: "manual" });
      const linked = await viaLink(second.link);
      expect(linked.status).toBe(302);
      expect(linked.headers.get("location")).toBe(`${PUBLIC}/`);
      expect((await viaLink(second.link)).status).toBe(401);
      expect((await viaLink(first.link)).status).toBe(302); // an earlier link stays good until used or expired
    } finally {
      await portal.close();
    }

    // The email belongs to a user, not an admin: refused, nothing changed.
    const portalAgain = await startPortal({ host: "127.0.0.1", port: 0, database: { dataDir: dir } });
    try {
      const account = await portalAgain.database.getRepository(AccountEntity).findOneByOrFail({ slug: "default" });
      await portalAgain.database.query(`INSERT INTO actors (account_id, id, type, name, email) VALUES ($1, gen_random_uuid(), 'user', 'U', 'user@example.test')`, [account.id]);
    } finally {
      await portalAgain.close();
    }
    const refused = await init("--init-admin", "user@example.test");
    expect(refused.code).toBe(2);
    expect(refused.err).toContain("already a user");
  }, 120_000);
});
