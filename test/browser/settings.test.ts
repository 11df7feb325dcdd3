// The settings and relays pages clicked through in Chromium (see admin.test.ts for how the browser
// tests run), each step checked against the API itself:
//
// 1. Settings: upstream DNS servers edited in the page are what GET /api/account returns; an address
//    the API refuses shows the API's own message beside its input and changes nothing.
// 2. An API token issued to a new API client is shown once and works; revoked, it gets 401; the
//    client, now listed, gets another.
// 3. An OpenID Connect provider: a plain-http issuer is refused with the API's message; an https one
//    is added, shows its redirect URI, and the sign-in page's list offers it; deleted, it is gone.
// 4. Relays: a relay token made in the page, with the command to run a relay; a relay that joins over
//    the WebSocket with it shows online with its address and, as it reports it, its load, then
//    offline without a reload.
//
// Screenshots: settings, relays.

import { afterAll, beforeAll, expect, it } from "vitest";
import { ScriptedDevice } from "../../server/src/testing/device.js";
import { browserSuite, loadPlaywright, type BrowserContext, type Page } from "./support.js";

const playwright = await loadPlaywright();

browserSuite("the settings and relays pages in Chromium", playwright, (lab, devices) => {
  let context: BrowserContext;
  let page: Page;
  let errors: string[];
  beforeAll(async () => {
    ({ context, page, errors } = await lab().signedIn());
  }, 60_000);
  afterAll(async () => {
    await context?.close();
  });

  /** The API, as the signed-in browser calls it (its session cookie and CSRF token). */
  // Bodies are read loosely and their shape asserted, as in server/src/testing/api.ts.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const apiCall = async (method: string, path: string, data?: unknown): Promise<{ status: number; body: any }> => {
    const csrf = decodeURIComponent((await context.cookies()).find((c) => c.name === "wardline_csrf")?.value ?? "");
    const res = await context.request.fetch(`${lab().portal.url}${path}`, { method, headers: { "X-CSRF-Token": csrf }, ...(data === undefined ? {} : { data }) });
    const text = await res.text();
    return { status: res.status(), body: text === "" ? null : JSON.parse(text) };
  };
  /** The text of the error slot beside an input. */
  const errorBeside = async (input: ReturnType<Page["getByLabel"]>): Promise<string | null> => page.locator(`[id="${await input.getAttribute("aria-describedby")}"]`).textContent();

  it("saves the upstream DNS servers, and shows the API's refusal of a bad one beside it", async () => {
    await page.goto(`${lab().portal.url}/initech/settings`);
    await page.getByRole("heading", { name: "Settings" }).waitFor();
    const form = page.getByRole("form", { name: "Account settings" });
    expect(await form.getByLabel("Account name").inputValue()).toBe((await apiCall("GET", "/api/account")).body.name);

    await form.getByLabel("DNS server 1").fill("9.9.9.9");
    await form.getByRole("button", { name: "Add a DNS server" }).click();
    await form.getByLabel("DNS server 2").fill("2001:4860:4860:0::8888");
    await form.getByRole("button", { name: "Save account settings" }).click();
    await form.getByText("Saved.").waitFor();
    expect((await apiCall("GET", "/api/account")).body.upstream_dns).toEqual(["9.9.9.9", "2001:4860:4860::8888"]);
    // The page shows what the API kept (its canonical form), and a free input for one more.
    expect(await form.getByLabel("DNS server 2").inputValue()).toBe("2001:4860:4860::8888");
    expect(await form.getByLabel("DNS server 3").inputValue()).toBe("");

    // A bad address after an emptied one: its message lands beside the input it was typed in.
    await form.getByLabel("DNS server 1").fill("");
    await form.getByLabel("DNS server 3").fill("dns.example");
    await form.getByRole("button", { name: "Save account settings" }).click();
    const bad = form.getByLabel("DNS server 3");
    await expect.poll(() => bad.getAttribute("aria-invalid")).toBe("true");
    const said = await apiCall("PATCH", "/api/account", { upstream_dns: ["2001:4860:4860::8888", "dns.example"] });
    expect(said.status).toBe(422);
    const message = said.body.errors.find((e: { field: string }) => e.field === "upstream_dns/1")?.message;
    expect(message).toContain("dns.example");
    expect(await errorBeside(bad)).toBe(message);
    expect(await form.getByLabel("DNS server 2").getAttribute("aria-invalid")).toBeNull();
    expect((await apiCall("GET", "/api/account")).body.upstream_dns, "nothing changed").toEqual(["9.9.9.9", "2001:4860:4860::8888"]);
  });

  it("issues an API token to a new API client, shown once and working, and revokes it", async () => {
    const form = page.getByRole("form", { name: "New API token" });
    await form.getByRole("button", { name: "Issue API token" }).click();
    // No client name: the API's refusal of the actor, beside the client's name.
    const clientName = form.getByLabel("New API client's name");
    await expect.poll(() => clientName.getAttribute("aria-invalid")).toBe("true");
    expect(await errorBeside(clientName)).toBe((await apiCall("POST", "/api/actors", { type: "api_client", name: "" })).body.errors[0].message);
    expect((await apiCall("GET", "/api/actors?type=api_client")).body.data).toEqual([]);

    await clientName.fill("CI deploys");
    await form.getByLabel("Token name").fill("ci");
    await form.getByRole("button", { name: "Issue API token" }).click();
    const shown = page.getByTestId("api-token");
    await shown.waitFor();
    const token = (await shown.textContent())!.trim();
    const me = await fetch(`${lab().portal.url}/api/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { actor: { name: string; type: string } }).actor).toMatchObject({ name: "CI deploys", type: "api_client" });
    const row = page.locator("tr", { hasText: "CI deploys" });
    await row.waitFor();
    expect(await row.textContent()).toContain("ci");
    expect(await row.textContent()).not.toContain(token);

    await row.getByRole("button", { name: "Revoke token ci" }).click();
    await row.getByRole("button", { name: "Confirm: revoke token ci" }).click();
    await expect.poll(() => page.locator("tr", { hasText: "CI deploys" }).count()).toBe(0);
    expect((await apiCall("GET", "/api/tokens?kind=api")).body.data.map((t: { name: string }) => t.name)).not.toContain("ci");
    expect((await fetch(`${lab().portal.url}/api/me`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    // The new client is now in the list to pick, and gets a second token from it.
    await form.getByLabel("API client").selectOption({ label: "CI deploys" });
    expect(await form.getByLabel("New API client's name").count(), "no new client asked for").toBe(0);
    await form.getByLabel("Token name").fill("deploys");
    await form.getByRole("button", { name: "Issue API token" }).click();
    await page.locator("tr", { hasText: "deploys" }).getByRole("button", { name: "Revoke token deploys" }).waitFor();
    const tokens = (await apiCall("GET", "/api/tokens?kind=api")).body.data;
    expect(tokens).toEqual([expect.objectContaining({ name: "deploys", actor_id: (await apiCall("GET", "/api/actors?type=api_client")).body.data[0].id })]);
    expect((await fetch(`${lab().portal.url}/api/me`, { headers: { authorization: `Bearer ${(await shown.textContent())!.trim()}` } })).status).toBe(200);
  });

  it("refuses a plain-http issuer with the API's message, adds an https provider the sign-in page offers, deletes it", async () => {
    const form = page.getByRole("form", { name: "New sign-in provider" });
    await form.getByLabel("Name").fill("Okta");
    await form.getByLabel("Issuer URL").fill("http://idp.example.com");
    await form.getByLabel("Client ID").fill("wardline");
    await form.getByLabel("Client secret").fill("s3cret-from-okta");
    await form.getByRole("button", { name: "Add provider" }).click();
    const issuer = form.getByLabel("Issuer URL");
    await expect.poll(() => issuer.getAttribute("aria-invalid")).toBe("true");
    const said = await apiCall("POST", "/api/auth_providers", { name: "Okta", issuer: "http://idp.example.com", client_id: "wardline", client_secret: "x" });
    expect(said.status).toBe(422);
    expect(await errorBeside(issuer)).toBe(said.body.errors.find((e: { field: string }) => e.field === "issuer").message);
    expect((await apiCall("GET", "/api/auth_providers")).body.data).toEqual([]);

    await issuer.fill("https://idp.example.com");
    await form.getByRole("button", { name: "Add provider" }).click();
    const redirect = page.getByTestId("redirect-uri");
    await redirect.waitFor();
    const [made] = (await apiCall("GET", "/api/auth_providers")).body.data;
    expect(made).toMatchObject({ name: "Okta", issuer: "https://idp.example.com", client_id: "wardline", scopes: "openid email profile" });
    expect(await redirect.textContent()).toBe(`${lab().portal.url}/api/auth/initech/oidc/${made.id}/callback`);
    expect(await page.locator(`tr[data-provider="${made.id}"]`).textContent()).not.toContain("s3cret");
    const offered = (await (await fetch(`${lab().portal.url}/api/auth/initech/providers`)).json()) as { data: { id: string; name: string }[] };
    expect(offered.data).toEqual([expect.objectContaining({ id: made.id, name: "Okta" })]);
    // The sign-in page, signed out, offers it as a link to the provider's start URL.
    const visitor = await lab().browser.newContext({ viewport: { width: 1280, height: 800 } });
    const signInPage = await visitor.newPage();
    await signInPage.goto(`${lab().portal.url}/initech/sign_in`);
    const button = signInPage.getByRole("link", { name: "Sign in with Okta" });
    await button.waitFor();
    expect(await button.getAttribute("href")).toBe(`${lab().portal.url}/api/auth/initech/oidc/${made.id}/start`);
    await lab().shot(signInPage, "sign-in-oidc");
    await visitor.close();
    // The providers and tokens sections, the redirect URI to register shown.
    await page.evaluate(`document.getElementById("providers-title").scrollIntoView()`);
    await lab().shot(page, "settings");

    const row = page.locator(`tr[data-provider="${made.id}"]`);
    await row.getByRole("button", { name: "Delete provider Okta" }).click();
    await row.getByRole("button", { name: "Confirm: delete provider Okta" }).click();
    await page.getByText("No sign-in providers").waitFor();
    expect((await apiCall("GET", "/api/auth_providers")).body.data).toEqual([]);
  });

  it("makes a relay token with the command to run a relay, and shows a relay that joins with it online, then offline", async () => {
    await page.goto(`${lab().portal.url}/initech/relays`);
    await page.getByRole("heading", { name: "Relays" }).waitFor();
    expect(await page.getByText("No relays yet").count()).toBe(1);
    const form = page.getByRole("form", { name: "New relay token" });
    await form.getByLabel("Relay name").fill("relay-fra");
    await form.getByRole("button", { name: "Create relay token" }).click();
    const run = page.getByTestId("run-command");
    await run.waitFor();
    expect(await run.textContent()).toBe(`sudo wardline relay --portal-url ${lab().portal.url} --token-file /etc/wardline/relay.token`);
    expect(await page.getByTestId("systemd-unit").textContent()).toContain(`ExecStart=/usr/local/bin/wardline relay --portal-url ${lab().portal.url} --token-file /etc/wardline/relay.token`);
    const token = /printf '%s' '([^']+)'/.exec((await page.getByTestId("token-command").textContent()) ?? "")?.[1];
    expect(token).toBeTruthy();
    // Listed at once, not joined yet.
    const row = page.locator("tr", { hasText: "relay-fra" });
    await expect.poll(() => row.getByTestId("relay-state").textContent()).toBe("offline");
    expect(await row.getByTestId("relay-addresses").textContent()).toBe("not joined yet");

    const loads: string[] = [];
    page.on("load", () => loads.push(page.url()));
    const relay = await ScriptedDevice.connect(lab().portal.url, "relay", token!);
    devices.push(relay);
    expect((await relay.join({ ipv4: "203.0.113.7", ipv6: "2001:db8::7", port: 3478 })).status).toBe("ok");
    await relay.next("init");
    await expect.poll(() => row.getByTestId("relay-state").textContent(), { timeout: 10_000 }).toBe("online");
    expect(await row.getByTestId("relay-addresses").textContent()).toBe("203.0.113.7:3478[2001:db8::7]:3478");
    const listed = (await apiCall("GET", "/api/relays")).body.data;
    expect(listed).toEqual([expect.objectContaining({ name: "relay-fra", online: true, ipv4: "203.0.113.7", port: 3478 })]);
    expect(await run.count(), "the commands shown stay").toBe(1);
    expect(await row.getByTestId("relay-load").textContent()).toBe("not reported yet");
    // The load it reports arrives over the event stream; 125,000 bytes a second are 1 Mbit/s.
    expect((await relay.request("load", { allocations: 2, channels: 1, bytes_per_second: 125_000 })).status).toBe("ok");
    await expect.poll(() => row.getByTestId("relay-load").textContent(), { timeout: 10_000 }).toBe("2 allocations, 1 channel1.0 Mbit/s");
    await lab().shot(page, "relays");

    await relay.close();
    await expect.poll(() => row.getByTestId("relay-state").textContent(), { timeout: 10_000 }).toBe("offline");
    expect(await row.getByTestId("relay-addresses").textContent(), "where it was stays shown").toContain("203.0.113.7:3478");
    expect(await row.getByTestId("relay-load").textContent(), "an offline relay carries nothing").toBe("—");
    expect(loads, "no page load while the relay came and went").toEqual([]);
    expect(errors).toEqual([]);
  }, 60_000);
}, "initech");
