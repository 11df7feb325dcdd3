// The Changes and Authorizations pages in Chromium (test/browser/support.ts). An admin creates a site in
// the UI and finds its creation, by them, in the change log, then a rename with the name before and
// after, and narrows the log to sites. With
// authorization records written as the portal writes them (AuthorizationRecorder on the portal's
// database) for a user's laptop and the admin's, the Authorizations page shows who reached what through
// which gateway until when, and which ended; the actor filter and "Active only" narrow it; a filter the
// API refuses shows the API's message beside its select; "Next page" follows the cursor to the rest.
// Screenshots: changes, authorizations.

import { randomUUID } from "node:crypto";
import { expect, it } from "vitest";
import { createActor } from "../../server/src/accounts/accounts.service.js";
import { AccountScope } from "../../server/src/database/account-scope.js";
import { DeviceEntity, ResourceEntity, SiteEntity, type Device } from "../../server/src/database/entities.js";
import { AuthorizationRecorder, type AuthorizationRecord } from "../../server/src/realtime/authorization-recorder.js";
import { browserSuite, loadPlaywright, type Page } from "./support.js";

const playwright = await loadPlaywright();

browserSuite("the Changes and Authorizations pages in Chromium", playwright, (lab) => {

  /** A time as the page shows it (lib.js formatTime, in the browser's locale and zone). */
  const shownTime = (page: Page, iso: string) => page.evaluate((at) => new Date(at).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }), iso);

  it("lists the admin's new site in the change log, and authorizations with who, what, which gateway and until when", async () => {
    const { portal, admin, slug } = lab();
    const { context, page, errors } = await lab().signedIn();

    // A site made in the UI is in the change log: created, by the admin; a rename shows what changed.
    const newSite = page.getByRole("form", { name: "New site" });
    await newSite.getByLabel("Name").fill("Frankfurt");
    await newSite.getByRole("button", { name: "Create site" }).click();
    await page.getByRole("heading", { name: "Frankfurt" }).waitFor();
    const siteId = page.url().split("/").pop()!;
    const csrf = decodeURIComponent((await context.cookies()).find((c) => c.name === "wardline_csrf")?.value ?? "");
    expect((await context.request.patch(`${portal.url}/api/sites/${siteId}`, { data: { name: "Frankfurt am Main" }, headers: { "X-CSRF-Token": csrf } })).status()).toBe(200);
    await page.goto(`${portal.url}/${slug}/changes`);
    await page.getByRole("heading", { name: "Changes" }).waitFor();
    const siteRows = page.locator("tbody tr", { hasText: "Frankfurt" });
    expect(await siteRows.count()).toBe(2);
    const [renamed, created] = [await siteRows.nth(0).locator("td").allTextContents(), await siteRows.nth(1).locator("td").allTextContents()];
    expect(created.slice(1, 4)).toEqual([admin.admin.name, "created", "Site FrankfurtHistory"]);
    expect(renamed.slice(1, 5)).toEqual([admin.admin.name, "changed", "Site Frankfurt am MainHistory", "name: Frankfurt → Frankfurt am Main"]);
    const everything = await page.locator("tbody tr").count();
    expect(everything, "the sign-in and the admin's own rows are there too").toBeGreaterThan(2);
    const filter = page.getByRole("form", { name: "Filter changes" });
    await filter.getByLabel("Object type").selectOption("sites");
    await filter.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/object_type=sites/);
    await expect.poll(() => page.locator("tbody tr").count()).toBe(2);
    expect(await page.locator("tbody tr td:nth-child(4)").allTextContents()).toEqual(["Site Frankfurt am MainHistory", "Site FrankfurtHistory"]);
    await lab().shot(page, "changes");

    // Authorization records, as the portal writes them: Alice's laptop reached Payroll through gw-fra-1
    // until an hour from now; the admin reached the Wiki, revoked; the admin's older one to Payroll expired.
    const scope = new AccountScope(portal.database, admin.account.id, admin.admin.id);
    const site = (await scope.repository(SiteEntity).list()).find((s) => s.id === siteId)!;
    const alice = await createActor(scope, { type: "user", name: "Alice Liddell", email: "alice@acme.test" });
    let n = 0;
    const device = (kind: Device["kind"], name: string, actorId: string | null) =>
      scope.repository(DeviceEntity).insert({
        kind,
        actorId,
        siteId: kind === "gateway" ? site.id : null,
        name,
        publicKey: Buffer.alloc(32, ++n).toString("base64"),
        ipv4: `100.64.0.${n + 1}`,
        ipv6: `fd00:2021:1111::${n + 1}`,
        verifiedAt: null,
        lastSeenAt: null,
      });
    const laptop = await device("client", "alice-laptop", alice.id);
    const adminLaptop = await device("client", "admin-laptop", admin.admin.id);
    const gateway = await device("gateway", "gw-fra-1", null);
    const payroll = await scope.repository(ResourceEntity).insert({ type: "dns", name: "Payroll", address: "payroll.acme.test", addressDescription: null, filters: [] });
    const wiki = await scope.repository(ResourceEntity).insert({ type: "dns", name: "Wiki", address: "wiki.acme.test", addressDescription: null, filters: [] });
    const now = Date.now();
    const record = (changes: Partial<AuthorizationRecord>): AuthorizationRecord => ({
      accountId: admin.account.id,
      id: randomUUID(),
      clientDeviceId: adminLaptop.id,
      gatewayDeviceId: gateway.id,
      resourceId: payroll.id,
      policyId: randomUUID(),
      actorId: admin.admin.id,
      createdAt: new Date(now),
      expiresAt: new Date(now + 3_600_000),
      ...changes,
    });
    const alices = record({ clientDeviceId: laptop.id, actorId: alice.id, createdAt: new Date(now - 60_000) });
    const revoked = record({ resourceId: wiki.id, createdAt: new Date(now - 120_000) });
    const expired = record({ createdAt: new Date(now - 7_200_000), expiresAt: new Date(now - 3_600_000) });
    const recorder = new AuthorizationRecorder(portal.database);
    await Promise.all([alices, revoked, expired].map((r) => recorder.record(r)));
    await recorder.revoke(admin.account.id, [revoked.id], "policy_deleted");

    await page.goto(`${portal.url}/${slug}/authorizations`);
    await page.getByRole("heading", { name: "Authorizations" }).waitFor();
    const rows = page.locator("tbody tr");
    expect(await rows.count()).toBe(3);
    const row = (id: string) => page.locator(`tr[data-authorization="${id}"]`);
    const alicesCells = await row(alices.id).locator("td").allTextContents();
    expect(alicesCells).toEqual([
      await shownTime(page, alices.createdAt.toISOString()),
      "Alice Liddellon alice-laptop",
      "Payroll",
      "gw-fra-1",
      await shownTime(page, alices.expiresAt!.toISOString()),
      "active",
    ]);
    expect(await row(revoked.id).locator("td").nth(5).innerText()).toBe("revoked\npolicy deleted");
    expect(await row(expired.id).locator("td").nth(5).textContent()).toBe("expired");
    // Newest first.
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-authorization")))).toEqual([alices.id, revoked.id, expired.id]);
    await lab().shot(page, "authorizations");

    // Live: one recorded now through the portal's own recorder (as an authorization on any node is)
    // is announced on the open page without a reload, and its link shows it.
    const loads: string[] = [];
    page.on("load", () => loads.push(page.url()));
    const live = record({ resourceId: wiki.id, createdAt: new Date(now + 1000) });
    await portal.realtime.recorder.record(live);
    const fresh = page.getByTestId("new-authorizations");
    await expect.poll(() => fresh.textContent(), { timeout: 5000 }).toMatch(/^1 new authorization since this page loaded/);
    expect(loads).toEqual([]);
    expect(await rows.count()).toBe(3);
    await fresh.getByRole("link", { name: "Show them" }).click();
    await expect.poll(() => rows.count()).toBe(4);
    expect(await rows.first().getAttribute("data-authorization")).toBe(live.id);
    await portal.database.query("DELETE FROM authorizations WHERE id = $1", [live.id]);
    await page.goto(`${portal.url}/${slug}/authorizations`);
    await expect.poll(() => rows.count()).toBe(3);

    // The actor filter narrows to Alice; "Active only" narrows the admin's to none.
    const authFilter = page.getByRole("form", { name: "Filter authorizations" });
    await authFilter.getByLabel("Actor").selectOption(alice.id);
    await authFilter.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(new RegExp(`actor_id=${alice.id}`));
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.first().getAttribute("data-authorization")).toBe(alices.id);
    await authFilter.getByLabel("Actor").selectOption(admin.admin.id);
    await authFilter.getByLabel("Active only").check();
    await authFilter.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/active=true/);
    await page.getByText("No authorizations match.").waitFor();
    await page.getByRole("form", { name: "Filter authorizations" }).getByLabel("Active only").uncheck();
    await page.getByRole("form", { name: "Filter authorizations" }).getByRole("button", { name: "Filter" }).click();
    await expect.poll(() => rows.count()).toBe(2);

    // A filter the API refuses: its message beside the select, no table.
    await page.goto(`${portal.url}/${slug}/authorizations?actor_id=nope`);
    const actorSelect = page.getByRole("form", { name: "Filter authorizations" }).getByLabel("Actor");
    await expect.poll(() => actorSelect.getAttribute("aria-invalid")).toBe("true");
    const apiSaid = (await (await context.request.get(`${portal.url}/api/authorizations?actor_id=nope`)).json()) as { errors: { field: string; message: string }[] };
    expect(await page.locator(`#${await actorSelect.getAttribute("aria-describedby")}`).textContent()).toBe(apiSaid.errors.find((e) => e.field === "actor_id")?.message);
    expect(await page.locator("table").count()).toBe(0);

    // Past a page: "Next page" shows the rest, none twice.
    const more = Array.from({ length: 50 }, (_, i) => record({ resourceId: wiki.id, createdAt: new Date(now - 10_000_000 - i * 1000) }));
    await Promise.all(more.map((r) => recorder.record(r)));
    await page.goto(`${portal.url}/${slug}/authorizations`);
    await page.getByRole("heading", { name: "Authorizations" }).waitFor();
    expect(await rows.count()).toBe(50);
    const first = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-authorization")));
    await page.getByRole("link", { name: "Next page" }).click();
    await page.waitForURL(/cursor=/);
    await expect.poll(() => rows.count()).toBe(3);
    const second = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-authorization")));
    expect(new Set([...first, ...second]).size).toBe(53);
    expect(await page.getByRole("link", { name: "Next page" }).count()).toBe(0);
    await page.getByRole("link", { name: "First page" }).click();
    await expect.poll(() => rows.count()).toBe(50);

    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);
});
