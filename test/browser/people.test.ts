// The admin UI's people pages clicked through in Chromium (support.ts): actors, groups and clients.
//
// 1. An email the API refuses ("not-an-email"): its own message beside the email field, nobody created.
// 2. A user and a service account created through the forms; a machine's form has no email field.
// 3. The service account's token: shown once with a copy button, working (a device registers with it),
//    gone from the page on reload, then revoked (the API refuses it).
// 4. A group, the user added as a member, the group seen on the user's page.
// 5. The user's client device (its token as signing in would give it, connected over the WebSocket
//    like the real client): listed with owner and version, verified, then unverified.
// 6. Disable and enable; delete after the in-page confirm step, Cancel first.
// Screenshots: actors, actor-refused, groups, group, clients.

import { expect, it } from "vitest";
import { issueToken } from "../../server/src/accounts/accounts.service.js";
import { AccountScope } from "../../server/src/database/account-scope.js";
import { randomPublicKey, ScriptedDevice } from "../../server/src/testing/device.js";
import { browserSuite, loadPlaywright, type BrowserContext } from "./support.js";

const playwright = await loadPlaywright();

interface Listed<T> {
  data: T[];
}
interface ActorRow {
  id: string;
  name: string;
  email: string | null;
}
interface DeviceRow {
  id: string;
  name: string;
  actor_id: string | null;
  verified_at: string | null;
}

browserSuite("the people pages of the admin UI in Chromium", playwright, (lab, devices) => {

  /** The API as the browser's session calls it (cookie and CSRF header). */
  const sessionApi = async (context: BrowserContext, method: string, path: string, data?: unknown) => {
    const csrf = decodeURIComponent((await context.cookies()).find((c) => c.name === "wardline_csrf")?.value ?? "");
    const res = await context.request.fetch(`${lab().portal.url}${path}`, { method, headers: { "X-CSRF-Token": csrf }, ...(data !== undefined ? { data } : {}) });
    return { status: res.status(), body: res.status() === 204 ? null : ((await res.json()) as Record<string, unknown>) };
  };

  it("creates actors (refusing a bad email), a token shown once, a group with a member, and verifies a client", async () => {
    const { portal, slug } = lab();
    const { context, page, errors } = await lab().signedIn();
    const base = `${portal.url}/${slug}`;
    const actors = async () => ((await sessionApi(context, "GET", "/api/actors")).body as unknown as Listed<ActorRow>).data;

    // 1. A refused email: the API's message beside the field, and nobody new.
    await page.goto(`${base}/actors`);
    await page.getByRole("heading", { name: "Users and service accounts" }).waitFor();
    const newActor = page.getByRole("form", { name: "New actor" });
    await newActor.getByLabel("Name").fill("Ada Lovelace");
    const email = newActor.getByLabel("Email");
    await email.fill("not-an-email");
    await newActor.getByRole("button", { name: "Create" }).click();
    await expect.poll(() => email.getAttribute("aria-invalid")).toBe("true");
    const shown = await page.locator(`#${await email.getAttribute("aria-describedby")}`).textContent();
    const apiSaid = await sessionApi(context, "POST", "/api/actors", { type: "user", name: "Ada Lovelace", email: "not-an-email" });
    expect(apiSaid.status).toBe(422);
    const problem = apiSaid.body as { errors?: { field: string; message: string }[] };
    expect(shown).toBe(problem.errors?.find((e) => e.field === "email")?.message);
    expect(shown).toMatch(/email/);
    await lab().shot(page, "actor-refused");
    expect((await actors()).map((a) => a.email)).toEqual([lab().admin.admin.email]);

    // 2. The user, then a service account, whose form has no email field.
    await email.fill("ada@acme.test");
    await newActor.getByRole("button", { name: "Create" }).click();
    await page.getByRole("heading", { name: "Ada Lovelace" }).waitFor();
    const adaId = page.url().split("/").pop()!;
    const ada = (await actors()).find((a) => a.id === adaId);
    expect(ada?.email).toBe("ada@acme.test");
    expect(await page.getByRole("region", { name: "Tokens" }).count(), "a person has no token section").toBe(0);

    await page.getByRole("link", { name: "← Users and service accounts" }).click();
    await newActor.getByLabel("Type").selectOption("service_account");
    expect(await newActor.getByLabel("Email").count()).toBe(0);
    await newActor.getByLabel("Name").fill("CI runner");
    await newActor.getByRole("button", { name: "Create" }).click();
    await page.getByRole("heading", { name: "CI runner" }).waitFor();
    const botUrl = page.url();
    const botId = botUrl.split("/").pop()!;

    // 3. Its token: shown once, working, gone on reload, then revoked.
    const newToken = page.getByRole("form", { name: "New token" });
    await newToken.getByLabel("Token name").fill("pipeline");
    await newToken.getByRole("button", { name: "Create token" }).click();
    const shownToken = page.getByTestId("new-token");
    await shownToken.waitFor();
    const token = ((await shownToken.textContent()) ?? "").trim();
    expect(token.length).toBeGreaterThan(20);
    expect(await page.getByText("Copy the token now: it is not shown again.").count()).toBe(1);
    expect(await page.getByRole("button", { name: "Copy" }).count()).toBe(1);
    const tokensTable = page.getByRole("table", { name: "Tokens" });
    await expect.poll(() => tokensTable.textContent()).toContain("pipeline");
    const registered = await fetch(`${portal.url}/api/devices/register`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "build box", public_key: randomPublicKey() }),
    });
    expect(registered.status).toBe(201);
    await page.reload();
    await page.getByRole("heading", { name: "CI runner" }).waitFor();
    expect(await page.getByRole("table", { name: "Tokens" }).textContent()).toContain("pipeline");
    expect(await page.locator("body").textContent()).not.toContain(token);
    await page.getByRole("form", { name: "Revoke pipeline" }).getByRole("button", { name: "Revoke" }).click();
    await page.getByText("No tokens.").waitFor();
    const refused = await fetch(`${portal.url}/api/devices?kind=client`, { headers: { authorization: `Bearer ${token}` } });
    expect(refused.status).toBe(401);

    await page.getByRole("link", { name: "← Users and service accounts" }).click();
    const actorsTable = page.getByRole("table", { name: "Actors" });
    await expect.poll(() => actorsTable.locator("tbody tr").count()).toBe(3);
    expect(await actorsTable.locator(`tr[data-actor="${botId}"]`).textContent()).toContain("Service account");
    await lab().shot(page, "actors");

    // 4. A group with Ada in it, seen from Ada's page.
    await page.goto(`${base}/groups`);
    await page.getByRole("heading", { name: "Groups" }).waitFor();
    const newGroup = page.getByRole("form", { name: "New group" });
    await newGroup.getByLabel("Name").fill("Engineering");
    await newGroup.getByRole("button", { name: "Create group" }).click();
    await page.getByRole("heading", { name: "Engineering" }).waitFor();
    expect(await page.getByText("No members yet: add one below.").count()).toBe(1);
    const add = page.getByRole("form", { name: "Add a member" });
    await add.getByLabel("Actor").selectOption(adaId);
    await add.getByRole("button", { name: "Add member" }).click();
    const member = page.locator(`tr[data-member="${adaId}"]`);
    await member.waitFor();
    expect(await member.textContent()).toContain("Ada Lovelace");
    const groupId = page.url().split("/").pop()!;
    const members = (await sessionApi(context, "GET", `/api/groups/${groupId}/members`)).body as unknown as Listed<{ actor_id: string }>;
    expect(members.data.map((m) => m.actor_id)).toEqual([adaId]);
    expect(await page.locator("main").textContent(), "nothing renders as null").not.toContain("null");
    await lab().shot(page, "group");
    await page.getByRole("link", { name: "← Groups" }).click();
    await page.getByRole("link", { name: "Engineering" }).waitFor();
    expect(await page.getByRole("link", { name: "Everyone" }).count()).toBe(1);
    await lab().shot(page, "groups");
    // Everyone lists the people and offers no changes, which the API would refuse.
    await page.getByRole("link", { name: "Everyone" }).click();
    await page.getByRole("heading", { name: "Everyone" }).waitFor();
    expect(await page.locator(`tr[data-member="${adaId}"]`).count()).toBe(1);
    expect(await page.locator(`tr[data-member="${botId}"]`).count(), "a machine is not in Everyone").toBe(0);
    expect(await page.getByRole("form").count()).toBe(0);

    await page.goto(`${base}/actors/${adaId}`);
    const adaGroups = page.getByTestId("actor-groups");
    await adaGroups.waitFor();
    expect(await adaGroups.getByRole("link").allTextContents()).toEqual(expect.arrayContaining(["Engineering", "Everyone"]));
    expect(await page.locator("main").textContent(), "nothing renders as null").not.toContain("null");
    await page.goto(botUrl);
    await page.getByRole("heading", { name: "CI runner" }).waitFor();
    expect(await page.getByTestId("actor-groups").count(), "the service account is in no group").toBe(0);

    // 5. Ada's client device: the client token signing in gives her (POST /api/me/client_tokens),
    // connected as the client connects, with its name and version.
    const scope = new AccountScope(portal.database, lab().admin.account.id, null);
    const clientToken = (await issueToken(scope, { kind: "client", actorId: adaId, name: "laptop" })).token;
    const laptop = await ScriptedDevice.connect(portal.url, "client", clientToken, { public_key: randomPublicKey(), name: "Ada's laptop", version: "1.4.2" });
    devices.push(laptop);
    await laptop.join();
    await laptop.next("init");
    const listed = ((await sessionApi(context, "GET", "/api/devices?kind=client")).body as unknown as Listed<DeviceRow>).data;
    const device = listed.find((d) => d.actor_id === adaId);
    expect(device?.name).toBe("Ada's laptop");

    await page.goto(`${base}/clients`);
    const row = page.locator(`tr[data-device="${device!.id}"]`);
    await row.waitFor();
    const cells = await row.locator("td").allTextContents();
    expect(cells.slice(0, 4)).toEqual(["Ada's laptop", "online", "Ada Lovelace", "1.4.2"]);
    expect(cells[5]).not.toBe("never");
    expect(await page.locator("tr", { hasText: "build box" }).textContent()).toContain("CI runner");
    const badge = row.getByTestId("verified");
    expect(await badge.textContent()).toBe("unverified");
    await row.getByRole("button", { name: "Verify" }).click();
    await expect.poll(() => badge.textContent()).toBe("verified");
    expect(((await sessionApi(context, "GET", `/api/devices/${device!.id}`)).body as unknown as DeviceRow).verified_at).not.toBeNull();
    await lab().shot(page, "clients");
    await row.getByRole("button", { name: "Unverify" }).click();
    await expect.poll(() => badge.textContent()).toBe("unverified");
    expect(((await sessionApi(context, "GET", `/api/devices/${device!.id}`)).body as unknown as DeviceRow).verified_at).toBeNull();
    // The laptop goes: its badge turns offline without a reload (the event stream), as the API says.
    await laptop.close();
    await expect.poll(() => row.getByTestId("client-state").textContent(), { timeout: 10_000 }).toBe("offline");
    expect(((await sessionApi(context, "GET", `/api/devices/${device!.id}`)).body as unknown as { online: boolean | null }).online).toBe(false);

    // 6. Disable and enable Ada; delete the service account, after Cancel once.
    await page.goto(`${base}/actors/${adaId}`);
    await page.getByRole("heading", { name: "Ada Lovelace" }).waitFor();
    await page.getByRole("button", { name: "Disable" }).click();
    await expect.poll(() => page.getByTestId("actor-status").textContent()).toBe("disabled");
    expect((await fetch(`${portal.url}/api/devices?kind=client`, { headers: { authorization: `Bearer ${clientToken}` } })).status).toBe(401);
    await page.getByRole("button", { name: "Enable" }).click();
    await expect.poll(() => page.getByTestId("actor-status").textContent()).toBe("enabled");

    await page.goto(botUrl);
    await page.getByRole("button", { name: "Delete CI runner…" }).click();
    await page.getByRole("button", { name: "Cancel" }).click();
    expect(await page.getByRole("button", { name: "Yes, delete CI runner" }).count()).toBe(0);
    expect((await actors()).some((a) => a.id === botId), "Cancel deletes nothing").toBe(true);
    await page.getByRole("button", { name: "Delete CI runner…" }).click();
    await page.getByRole("button", { name: "Yes, delete CI runner" }).click();
    await page.waitForURL(`${base}/actors`);
    await expect.poll(async () => (await actors()).some((a) => a.id === botId)).toBe(false);

    expect(errors).toEqual([]);
    await context.close();
  }, 120_000);
});
