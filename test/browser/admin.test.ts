// The admin UI clicked through in a real browser: Debian's Chromium, headless, driven by
// playwright-core, against `startPortal` on the embedded database (what `wardline portal` runs).
//
// An admin finds the account, signs in with the password --init-admin printed, sees who they are
// signed in as and when the session ends, is refused a site without a name (the API's own message next
// to the field, nothing created), creates a site, mints a gateway token with commands ready to paste,
// sees a gateway that joins over the WebSocket turn online and then offline without a reload (the
// portal's event stream), and signs out. Each page is photographed at
// 1280×800 into test-artifacts/screenshots/.
//
// Without Chromium or playwright-core the test is skipped with the reason, except under CI, where a
// missing browser is a failure.

import { expect, it } from "vitest";
import { randomPublicKey, ScriptedDevice } from "../../server/src/testing/device.js";
import { browserSuite, collectErrors, loadPlaywright } from "./support.js";

const playwright = await loadPlaywright();

browserSuite("the admin UI in Chromium", playwright, (lab, devices) => {

  it("signs in, refuses a nameless site, creates a site and a gateway token, shows a joined gateway online, signs out", async () => {
    const { portal, admin } = lab();
    const context = await lab().browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const errors = collectErrors(page);
    const shot = (name: string) => lab().shot(page, name);

    // Served by the portal itself, with a policy that allows only its own scripts.
    const first = await page.goto(`${portal.url}/`);
    expect(first?.status()).toBe(200);
    expect(first?.headers()["content-security-policy"]).toContain("script-src 'self'");
    await page.getByLabel("Account").fill("acme");
    await shot("account");
    await page.getByRole("button", { name: "Continue" }).click();
    await page.waitForURL(`${portal.url}/acme/sign_in`);

    // A wrong password: the API's refusal, shown on the form.
    const passwordForm = page.getByRole("form", { name: "Sign in with a password" });
    await passwordForm.getByLabel("Email").fill(admin.admin.email!);
    await passwordForm.getByLabel("Password").fill("not the password");
    await passwordForm.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => passwordForm.locator(".problem").textContent()).toMatch(/unauthenticated|not accepted|invalid|sign/i);
    await shot("sign-in");
    await passwordForm.getByLabel("Password").fill(admin.password);
    await passwordForm.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${portal.url}/acme/sites`);
    const who = page.getByTestId("signed-in-as");
    await expect.poll(() => who.textContent()).toContain(admin.admin.email!);
    expect(await who.textContent()).toMatch(/session ends/);
    await page.getByRole("heading", { name: "Sites" }).waitFor();
    await shot("sites-empty");

    // No name: the field says what the API said, and no site exists.
    const newSite = page.getByRole("form", { name: "New site" });
    await newSite.getByRole("button", { name: "Create site" }).click();
    const nameInput = newSite.getByLabel("Name");
    await expect.poll(() => nameInput.getAttribute("aria-invalid")).toBe("true");
    const shown = await page.locator(`#${await nameInput.getAttribute("aria-describedby")}`).textContent();
    // The same request straight to the API, with the browser's session.
    const csrf = (await context.cookies()).find((c) => c.name === "wardline_csrf")?.value ?? "";
    const apiSaid = await context.request.post(`${portal.url}/api/sites`, { data: { name: "" }, headers: { "X-CSRF-Token": decodeURIComponent(csrf) } });
    expect(apiSaid.status()).toBe(422);
    const problem = (await apiSaid.json()) as { errors?: { field: string; message: string }[] };
    expect(shown).toBe(problem.errors?.find((e) => e.field === "name")?.message);
    expect(shown).not.toBe("");
    await shot("site-refused");
    const listed = (await (await context.request.get(`${portal.url}/api/sites`)).json()) as { data: unknown[] };
    expect(listed.data).toHaveLength(0);

    // A site, then a gateway token and its commands.
    await nameInput.fill("Headquarters");
    await newSite.getByRole("button", { name: "Create site" }).click();
    await page.getByRole("heading", { name: "Headquarters" }).waitFor();
    expect(await page.getByText("No gateway has joined this site yet.").count()).toBe(1);
    const siteUrl = page.url();
    await page.getByRole("button", { name: "Create gateway token" }).click();
    const run = page.getByTestId("run-command");
    await run.waitFor();
    expect(await run.textContent()).toBe(`sudo wardline gateway --portal-url ${portal.url} --token-file /etc/wardline/gateway.token`);
    const tokenCommand = (await page.getByTestId("token-command").textContent()) ?? "";
    const token = /'(wl[^']+)'/.exec(tokenCommand)?.[1] ?? /'([^']+)' \| sudo tee/.exec(tokenCommand)?.[1];
    expect(token, tokenCommand).toBeTruthy();
    expect(await page.getByTestId("systemd-unit").textContent()).toContain(`ExecStart=/usr/local/bin/wardline gateway --portal-url ${portal.url}`);
    await shot("gateway-token");

    // The token works: a gateway joins with it and the open page shows it online without a reload
    // (the portal's event stream), then offline when it goes; a reload agrees.
    const loads: string[] = [];
    page.on("load", () => loads.push(page.url()));
    const gateway = await ScriptedDevice.connect(portal.url, "gateway", token!, { public_key: randomPublicKey() });
    devices.push(gateway);
    await gateway.join({});
    await gateway.next("init");
    const state = page.getByTestId("gateway-state");
    await expect.poll(() => state.first().textContent().catch(() => null), { timeout: 10_000 }).toBe("online");
    expect(await page.getByTestId("run-command").count(), "the commands shown stay").toBe(1);
    await shot("site-gateway-online");
    await gateway.close();
    await expect.poll(() => state.first().textContent(), { timeout: 10_000 }).toBe("offline");
    expect(loads, "no page load since the site opened").toEqual([]);
    await page.goto(siteUrl);
    await expect.poll(() => state.first().textContent()).toBe("offline");

    // Back to the list through the link, then sign out.
    await page.getByRole("link", { name: "← Sites" }).click();
    await page.getByRole("link", { name: "Headquarters" }).waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${portal.url}/acme/sign_in`);
    expect((await context.request.get(`${portal.url}/api/me`)).status()).toBe(401);
    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);
});
