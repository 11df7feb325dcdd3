// The Policies page clicked through in Chromium (test/browser/support.ts): with a site, a resource, a
// group and a user in it made over the API (the page's own session and CSRF cookie), an admin creates
// a policy whose only condition is a time window (Mondays 09:00-17:00, Europe/Berlin) in the editor,
// is first refused an impossible end time with the API's message beside the To field, sees the policy
// listed with its window; opens it again and finds the window as entered; then "check access" for the
// user answers allowed inside the window (until it closes, as the API says) and denied outside it,
// naming current_utc_datetime; disabling the policy shows it disabled and the check then finds no
// policy. Screenshots: policies, policy-edit, check-access-allowed, check-access-denied.

import { expect, it } from "vitest";
import { browserSuite, loadPlaywright, type BrowserContext, errorBeside } from "./support.js";

const playwright = await loadPlaywright();

interface Policy {
  id: string;
  group_id: string;
  resource_id: string;
  disabled: boolean;
  conditions: { property: string; operator: string; values: string[] }[];
}

browserSuite("the Policies page in Chromium", playwright, (lab) => {

  /** The API with the browser's session, as the page calls it. */
  const apiOf = (context: BrowserContext) => {
    const csrf = async () => decodeURIComponent((await context.cookies()).find((c) => c.name === "wardline_csrf")?.value ?? "");
    const send = async (method: "post" | "put", path: string, data?: unknown) => {
      const res = await context.request[method](`${lab().portal.url}${path}`, { ...(data !== undefined ? { data } : {}), headers: { "X-CSRF-Token": await csrf() } });
      expect(res.status(), `${method} ${path}: ${await res.text()}`).toBeLessThan(300);
      return res.status() === 204 ? undefined : ((await res.json()) as Record<string, unknown>);
    };
    return {
      post: (path: string, data: unknown) => send("post", path, data),
      put: (path: string) => send("put", path),
      policies: async () => ((await (await context.request.get(`${lab().portal.url}/api/policies`)).json()) as { data: Policy[] }).data,
    };
  };


  it("creates a time-window policy, checks access inside and outside the window, and disables it", async () => {
    const { context, page, errors } = await lab().signedIn();
    const api = apiOf(context);
    const site = (await api.post("/api/sites", { name: "Headquarters" }))!.id as string;
    const wiki = (await api.post("/api/resources", { type: "dns", name: "Wiki", address: "wiki.acme.test", site_ids: [site] }))!.id as string;
    const team = (await api.post("/api/groups", { name: "On call" }))!.id as string;
    const ada = (await api.post("/api/actors", { type: "user", name: "Ada", email: "ada@acme.test" }))!.id as string;
    await api.put(`/api/groups/${team}/members/${ada}`);

    await page.goto(`${lab().portal.url}/${lab().slug}/policies`);
    await page.getByRole("heading", { name: "Policies", exact: true }).waitFor();
    expect(await page.getByText("No policies yet").count()).toBe(1);
    expect(await page.locator("main").textContent()).not.toContain("null");

    // The editor: group, resource, one time window.
    await page.getByRole("link", { name: "New policy" }).click();
    await page.getByRole("heading", { name: "New policy" }).waitFor();
    const editor = page.getByRole("form", { name: "Policy" });
    await editor.getByLabel("Group").selectOption({ label: "On call" });
    await editor.getByLabel("Resource").selectOption({ label: "Wiki" });
    await editor.getByLabel("Description").fill("on-call engineers reach the wiki during office hours");
    await editor.getByRole("button", { name: "Add a time window" }).click();
    const window = editor.locator("[data-window]").first();
    await window.getByRole("checkbox", { name: "Mon" }).check();
    await window.getByLabel("From").fill("09:00");
    const to = window.getByLabel("To");
    await to.fill("25:00");
    await window.getByLabel("Time zone").fill("Europe/Berlin");
    await editor.getByRole("button", { name: "Create policy" }).click();
    // Refused beside the To field with the API's own words; nothing created.
    expect(await errorBeside(page, to)).toMatch(/"09:00-25:00" is not a time range/);
    expect(await api.policies()).toHaveLength(0);
    await lab().shot(page, "policy-edit");
    await to.fill("17:00");
    await editor.getByRole("button", { name: "Create policy" }).click();

    // Listed, enabled, with its window in words.
    await page.getByRole("heading", { name: "Policies", exact: true }).waitFor();
    const row = page.locator("tr[data-policy]");
    await expect.poll(() => row.count()).toBe(1);
    expect(await row.textContent()).toContain("On call → Wiki");
    expect(await row.textContent()).toContain("Time window: Mon 09:00–17:00 (Europe/Berlin)");
    expect(await row.getByTestId("policy-state").textContent()).toBe("enabled");
    const [stored] = await api.policies();
    expect(stored).toMatchObject({ group_id: team, resource_id: wiki, disabled: false, conditions: [{ property: "current_utc_datetime", operator: "is_in_day_of_week_time_ranges", values: ["M/09:00-17:00/Europe/Berlin"] }] });
    await lab().shot(page, "policies");

    // Opened again, the editor shows the window as entered.
    await row.getByRole("link", { name: "On call → Wiki" }).click();
    await page.getByRole("heading", { name: "Edit policy" }).waitFor();
    const again = page.getByRole("form", { name: "Policy" }).locator("[data-window]");
    expect(await again.count()).toBe(1);
    expect(await again.getByRole("checkbox", { name: "Mon" }).isChecked()).toBe(true);
    expect(await again.getByRole("checkbox", { name: "Tue" }).isChecked()).toBe(false);
    expect(await again.getByLabel("Time zone").inputValue()).toBe("Europe/Berlin");
    expect(await again.getByLabel("To").inputValue()).toBe("17:00");
    await page.getByRole("link", { name: "← Policies" }).click();
    await page.getByRole("heading", { name: "Policies", exact: true }).waitFor();

    // Check access: Monday 7 December 2026, Berlin time.
    const check = page.getByRole("form", { name: "Check access" });
    await check.getByLabel("User").selectOption({ label: "Ada (ada@acme.test)" });
    await check.getByLabel("Resource").selectOption({ label: "Wiki" });
    await check.getByLabel("Time zone").fill("Europe/Berlin");
    await check.getByLabel("Date and time").fill("2026-12-07T10:30");
    await check.getByRole("button", { name: "Check access" }).click();
    const allowed = page.getByTestId("check-allowed");
    await allowed.waitFor();
    // The API's answer to the same question: allowed until the window closes at 17:00 Berlin.
    const apiAnswer = await context.request.post(`${lab().portal.url}/api/policies/check`, {
      data: { actor_id: ada, resource_id: wiki, at: "2026-12-07T10:30:00+01:00" },
      headers: { "X-CSRF-Token": decodeURIComponent((await context.cookies()).find((c) => c.name === "wardline_csrf")?.value ?? "") },
    });
    expect(await apiAnswer.json()).toEqual({ allowed: true, policy_id: stored!.id, until: "2026-12-07T16:00:00.000Z" });
    const allowedText = await allowed.textContent();
    expect(allowedText).toMatch(/^Allowed until /);
    // Shown on the chosen zone's clock, whatever the browser's locale: 17:00 on 7 December.
    expect(allowedText).toMatch(/\b17:00\b/);
    expect(allowedText).toMatch(/\b7\b/);
    expect(allowedText).toContain("On call → Wiki");
    await lab().shot(page, "check-access-allowed");

    await check.getByLabel("Date and time").fill("2026-12-07T18:00");
    await check.getByRole("button", { name: "Check access" }).click();
    const denied = page.getByTestId("check-denied");
    await denied.waitFor();
    expect(await page.getByTestId("check-allowed").count()).toBe(0);
    expect(await denied.textContent()).toContain("Denied (conditions)");
    const violated = denied.locator("li[data-property]");
    expect(await violated.count()).toBe(1);
    expect(await violated.getAttribute("data-property")).toBe("current_utc_datetime");
    expect(await violated.textContent()).toContain("Time window (current_utc_datetime): Mon 09:00–17:00 (Europe/Berlin)");
    await lab().shot(page, "check-access-denied");

    // Disabled: shown so, stored so, and it grants nothing.
    await page.getByRole("button", { name: "Disable On call → Wiki" }).click();
    await expect.poll(() => row.getByTestId("policy-state").textContent()).toBe("disabled");
    expect(await page.getByRole("button", { name: "Enable On call → Wiki" }).count()).toBe(1);
    expect((await api.policies())[0]!.disabled).toBe(true);
    await check.getByLabel("Date and time").fill("2026-12-07T10:30");
    await check.getByRole("button", { name: "Check access" }).click();
    await expect.poll(() => page.getByTestId("check-denied").textContent()).toContain("no_policy");

    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);
});
