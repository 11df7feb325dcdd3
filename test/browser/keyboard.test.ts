// The admin UI with the keyboard alone, in Chromium (see admin.test.ts for how the browser tests run):
// after page.goto nothing is clicked or filled; every step is a key press or typed text, and each
// outcome is checked in the page, and against the API where something changed.
//
// 1. Sign in: from /, Tab reaches the Account field and Enter continues; Tab to the password form's
//    Email and Password. A refused password leaves focus on the Sign in button (not on <body>);
//    the right one signs in.
// 2. Focus shows: on the sites and settings pages, Tab walks every stop until focus comes back to the
//    first; each is an element, not <body> (except once, at the end of the document), with an
//    outline or box-shadow drawn, and every focusable control of the page is among the stops.
//    Every input, select and textarea of every page visited has an accessible name.
// 3. Navigation: the Resources link of the bar with Enter, then Sites; a site created from its name
//    field with Enter, shown in the list and by GET /api/sites.
// 4. Two-step actions: a group's "Delete …" (lib.js confirmDelete) asks first, Space on Cancel goes
//    back with focus on the delete button, Space on the confirmation deletes (GET answers 404); an
//    API token's Revoke on the settings page arms with Enter and revokes with Space.
// 5. Focus after a change of page: the router puts it on <main>, so the next Tab lands in the page's
//    content; a page drawn again in place (a member added) puts it on <main> too, and a settings
//    section drawn again (a token issued, then revoked) on that section, never on <body>.
//
// Screenshot: keyboard-focus (the focused confirmation of a delete).

import { afterAll, beforeAll, expect, it } from "vitest";
import { browserSuite, collectErrors, loadPlaywright, type BrowserContext, type Page } from "./support.js";

const playwright = await loadPlaywright();

/** The bar's menu (app.js NAV), each a stop of every signed-in page. */
const NAV = ["Sites", "Resources", "Policies", "Users", "Groups", "Clients", "Authorizations", "Changes", "Relays", "Settings"];
/** More Tab presses than any page here has stops: a walk that needs more is going round in circles. */
const MAX_STOPS = 60;

/** What has the focus, as a keyboard user and a screen reader would tell it. */
interface Focused {
  /** Stable per element while the document lives, so a walk knows when it is back at its start. */
  key: number;
  tag: string;
  /** aria-label, else what aria-labelledby points at, else its label's text, else its own text. */
  name: string;
  isBody: boolean;
  isMain: boolean;
  inMain: boolean;
  /** An outline (style not none, width above 0) or a box-shadow is drawn on it. */
  indicator: boolean;
}

// The in-page halves are plain JavaScript in strings: the project's types are Node's, without the DOM.

/** In the page: a Focused for document.activeElement, keyed through a WeakMap kept on window. */
const FOCUSED = `(() => {
  window.focusKeys ??= new WeakMap();
  const el = document.activeElement ?? document.body;
  let key = window.focusKeys.get(el);
  if (key === undefined) {
    key = window.nextFocusKey = (window.nextFocusKey ?? 0) + 1;
    window.focusKeys.set(el, key);
  }
  const labels = [...(el.labels ?? [])];
  const labelledBy = el.getAttribute("aria-labelledby")?.split(/\\s+/).map((id) => document.getElementById(id)?.textContent ?? "").join(" ");
  const name = (el.getAttribute("aria-label") ?? labelledBy ?? (labels.length > 0 ? labels[0].textContent : el.textContent) ?? "").trim();
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  const shadow = style.boxShadow !== "" && style.boxShadow !== "none";
  const main = document.getElementById("main");
  return { key, tag: el.tagName, name, isBody: el === document.body, isMain: el === main, inMain: main.contains(el) && el !== main, indicator: outline || shadow };
})()`;

function focused(page: Page): Promise<Focused> {
  return page.evaluate<Focused>(FOCUSED);
}

/** Waits until the focus settles where `expected` says (the router and pages move it after an await). */
async function focusIs(page: Page, expected: Partial<Focused>): Promise<Focused> {
  await expect.poll(async () => focused(page)).toMatchObject(expected);
  return focused(page);
}

/** Presses Tab until the focused element is named `name`. */
async function tabTo(page: Page, name: string): Promise<Focused> {
  const seen: string[] = [];
  for (let i = 0; i < MAX_STOPS; i++) {
    await page.keyboard.press("Tab");
    const now = await focused(page);
    if (now.name === name) return now;
    seen.push(now.isBody ? "<body>" : `${now.tag} ${now.name}`);
  }
  throw new Error(`Tab never reached "${name}"; it went through ${seen.join(" | ")}`);
}

/**
 * Tab from where the focus is until it comes back to the first stop. <body> may come once: past the
 * last control Chromium hands the focus to the browser's own UI, which a headless page reads as <body>.
 * Returns the stops (body left out) and how often <body> came.
 */
async function walkTabStops(page: Page): Promise<{ stops: Focused[]; bodies: number }> {
  const stops: Focused[] = [];
  let bodies = 0;
  for (let i = 0; i < MAX_STOPS; i++) {
    await page.keyboard.press("Tab");
    const now = await focused(page);
    if (now.key === stops[0]?.key) return { stops, bodies };
    if (now.isBody) bodies++;
    else stops.push(now);
  }
  throw new Error(`focus did not come back to its first stop in ${MAX_STOPS} presses of Tab`);
}

/** The page's focusable controls that no stop of a walk reached (the start of their markup). */
function unreachable(page: Page, stops: Focused[]): Promise<string[]> {
  return page.evaluate<string[]>(`(() => {
    const reached = new Set(${JSON.stringify(stops.map((s) => s.key))});
    const controls = document.querySelectorAll("a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])");
    return [...controls]
      .filter((el) => el.getClientRects().length > 0)
      .filter((el) => !reached.has(window.focusKeys?.get(el)))
      .map((el) => el.outerHTML.slice(0, 120));
  })()`);
}

/** The page's inputs, selects and textareas without an accessible name (no label for it, no aria-label or aria-labelledby with text). */
const UNNAMED_CONTROLS = `[...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
  .filter((el) => {
    const text = (node) => (node?.textContent ?? "").trim() !== "";
    const byLabel = [...(el.labels ?? [])].some(text);
    const byAria = (el.getAttribute("aria-label") ?? "").trim() !== "";
    const byIds = (el.getAttribute("aria-labelledby") ?? "").split(/\\s+/).filter(Boolean).some((id) => text(document.getElementById(id)));
    return !(byLabel || byAria || byIds);
  })
  .map((el) => el.outerHTML)`;

function unnamedControls(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(UNNAMED_CONTROLS);
}

/** Every stop has a focus indicator drawn, and every control is a stop. */
async function expectEveryStopShown(page: Page, mustReach: string[]): Promise<void> {
  const { stops, bodies } = await walkTabStops(page);
  expect(bodies, "<body> only once, at the end of the document").toBeLessThanOrEqual(1);
  expect(stops.filter((s) => !s.indicator).map((s) => `${s.tag} ${s.name}`), "stops without a focus indicator").toEqual([]);
  const names = stops.map((s) => s.name);
  for (const name of mustReach) expect(names, `Tab reaches ${name}`).toContain(name);
  expect(await unreachable(page, stops), "controls Tab never reaches").toEqual([]);
}

browserSuite("the admin UI with the keyboard alone, in Chromium", playwright, (lab) => {
  let context: BrowserContext;
  let page: Page;
  let errors: string[];
  let url: string;
  beforeAll(async () => {
    url = lab().portal.url;
    context = await lab().browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    errors = collectErrors(page);
  });
  afterAll(async () => {
    await context?.close();
  });

  /** The API, with the browser's session cookie and CSRF token. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const apiCall = async (method: string, path: string, data?: unknown): Promise<{ status: number; body: any }> => {
    const csrf = decodeURIComponent((await context.cookies()).find((c) => c.name === "wardline_csrf")?.value ?? "");
    const res = await context.request.fetch(`${url}${path}`, { method, headers: { "X-CSRF-Token": csrf }, ...(data === undefined ? {} : { data }) });
    const text = await res.text();
    return { status: res.status(), body: text === "" ? null : JSON.parse(text) };
  };
  /** A page the router drew: its h1 shown, focus on <main>, and every field named. */
  const arrived = async (path: string, heading: string) => {
    await page.waitForURL(`${url}${path}`);
    await page.getByRole("heading", { level: 1, name: heading }).waitFor();
    await focusIs(page, { isMain: true });
    expect(await unnamedControls(page), `fields without a name on ${path}`).toEqual([]);
  };

  it("signs in from / with Tab, typing and Enter; a refused password leaves focus on the button", async () => {
    const { admin, slug } = lab();
    await page.goto(`${url}/`);
    await arrived("/", "Sign in to Wardline");
    await page.keyboard.press("Tab");
    await focusIs(page, { tag: "INPUT", name: "Account" });
    await page.keyboard.type(slug);
    await page.keyboard.press("Enter");
    await arrived(`/${slug}/sign_in`, `Sign in to ${slug}`);

    // The first field after <main> is the password form's Email.
    await page.keyboard.press("Tab");
    await focusIs(page, { tag: "INPUT", name: "Email" });
    expect(await page.evaluate(`document.activeElement.closest("form").getAttribute("aria-label")`)).toBe("Sign in with a password");
    await page.keyboard.type(admin.admin.email!);
    await page.keyboard.press("Tab");
    await focusIs(page, { tag: "INPUT", name: "Password" });
    await page.keyboard.type("not the password");
    await page.keyboard.press("Tab");
    await focusIs(page, { tag: "BUTTON", name: "Sign in" });
    await page.keyboard.press("Enter");
    const problem = page.getByRole("form", { name: "Sign in with a password" }).locator(".problem");
    await expect.poll(() => problem.textContent()).toMatch(/sign-in refused|wrong/i);
    // The button was disabled while the request ran, which drops focus; it comes back to the button.
    await focusIs(page, { tag: "BUTTON", name: "Sign in", indicator: true });

    await page.keyboard.press("Shift+Tab");
    await focusIs(page, { tag: "INPUT", name: "Password" });
    await page.keyboard.press("Control+A");
    await page.keyboard.type(admin.password);
    await page.keyboard.press("Enter");
    await arrived(`/${slug}/sites`, "Sites");
    expect((await apiCall("GET", "/api/me")).body.actor.email).toBe(admin.admin.email);
  });

  it("shows a focus indicator on every Tab stop of the sites page, and reaches every control", async () => {
    // From <main>, where the router left focus: the page's content, the end of the document, the bar.
    await expectEveryStopShown(page, [...NAV, "Sign out", "Name", "Create site"]);
  });

  it("goes to Resources and back to Sites from the bar, and creates a site with Enter", async () => {
    const { slug } = lab();
    await tabTo(page, "Resources");
    await page.keyboard.press("Enter");
    await arrived(`/${slug}/resources`, "Resources");
    // Focus on <main>: the next Tab is in the page, not back at the top of the bar.
    await page.keyboard.press("Tab");
    expect(await focused(page)).toMatchObject({ inMain: true, indicator: true });

    await tabTo(page, "Sites");
    await page.keyboard.press("Enter");
    await arrived(`/${slug}/sites`, "Sites");
    await tabTo(page, "Name");
    await page.keyboard.type("Branch office");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { level: 1, name: "Branch office" }).waitFor();
    const sitePath = new URL(page.url()).pathname;
    expect(sitePath).toMatch(new RegExp(`^/${slug}/sites/[0-9a-f-]{36}$`));
    await arrived(sitePath, "Branch office");
    await page.keyboard.press("Tab");
    await focusIs(page, { tag: "A", name: "← Sites" });
    await page.keyboard.press("Enter");
    await arrived(`/${slug}/sites`, "Sites");
    await page.getByRole("link", { name: "Branch office" }).waitFor();

    const sites = (await apiCall("GET", "/api/sites")).body.data as { id: string; name: string }[];
    expect(sites.map((s) => s.name)).toEqual(["Branch office"]);
    expect(sitePath).toBe(`/${slug}/sites/${sites[0]?.id}`);
  });

  it("adds a member and deletes a group through its two-step delete with Enter and Space", async () => {
    const { slug, admin } = lab();
    await tabTo(page, "Groups");
    await page.keyboard.press("Enter");
    await arrived(`/${slug}/groups`, "Groups");
    await tabTo(page, "Name");
    await page.keyboard.type("Night shift");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { level: 1, name: "Night shift" }).waitFor();
    const groupPath = new URL(page.url()).pathname;
    const apiPath = `/api/groups/${groupPath.split("/").pop()}`;
    await arrived(groupPath, "Night shift");

    // The page is drawn again in place once the member is added: focus goes to <main>, not <body>.
    await tabTo(page, "Add member");
    await page.keyboard.press("Enter");
    await page.getByRole("form", { name: `Remove ${admin.admin.name}` }).waitFor();
    await focusIs(page, { isMain: true });
    expect(((await apiCall("GET", `${apiPath}/members`)).body.data as { actor_id: string }[]).map((m) => m.actor_id)).toEqual([admin.admin.id]);

    // Asked first, focus on Cancel; Space on Cancel puts it back on the delete button.
    await tabTo(page, "Delete Night shift…");
    await page.keyboard.press("Enter");
    await focusIs(page, { tag: "BUTTON", name: "Cancel", indicator: true });
    expect(await page.getByText("Delete Night shift? Its memberships").count()).toBe(1);
    await page.keyboard.press("Space");
    await focusIs(page, { tag: "BUTTON", name: "Delete Night shift…", indicator: true });
    expect((await apiCall("GET", apiPath)).status, "Cancel deletes nothing").toBe(200);

    await page.keyboard.press("Enter");
    await focusIs(page, { name: "Cancel" });
    await page.keyboard.press("Shift+Tab");
    await focusIs(page, { tag: "BUTTON", name: "Yes, delete Night shift", indicator: true });
    await lab().shot(page, "keyboard-focus");
    await page.keyboard.press("Space");
    await arrived(`/${slug}/groups`, "Groups");
    expect((await apiCall("GET", apiPath)).status).toBe(404);
    expect(await page.getByRole("link", { name: "Night shift" }).count()).toBe(0);
  });

  it("shows focus on every stop of the settings page (its date picker too), issues an API token and revokes it with Enter and Space", async () => {
    const { slug } = lab();
    await tabTo(page, "Settings");
    await page.keyboard.press("Enter");
    await arrived(`/${slug}/settings`, "Settings");
    await expectEveryStopShown(page, ["Account name", "DNS server 1", "Expires", "Issue API token"]);

    // A token for a new API client, from the keyboard.
    await tabTo(page, "New API client's name");
    await page.keyboard.type("Deploy robot");
    await page.keyboard.press("Tab");
    await focusIs(page, { name: "Token name" });
    await page.keyboard.type("nightly");
    await page.keyboard.press("Enter");
    await page.getByTestId("api-token").waitFor();
    // The section is drawn again with the token: focus goes to it, where Tab carries on.
    await focusIs(page, { tag: "SECTION", name: "API tokens", indicator: true });
    const tokens = (await apiCall("GET", "/api/tokens?kind=api")).body.data as { id: string; name: string }[];
    expect(tokens.map((t) => t.name)).toEqual(["nightly"]);

    // Enter arms the button (its name says so, focus stays); Space revokes; focus lands on the section.
    await tabTo(page, "Revoke token nightly");
    await page.keyboard.press("Enter");
    await focusIs(page, { tag: "BUTTON", name: "Confirm: revoke token nightly", indicator: true });
    expect((await apiCall("GET", "/api/tokens?kind=api")).body.data, "armed, not revoked").toHaveLength(1);
    await page.keyboard.press("Space");
    await expect.poll(async () => (await apiCall("GET", "/api/tokens?kind=api")).body.data).toEqual([]);
    await page.getByText("No API tokens.").waitFor();
    await focusIs(page, { tag: "SECTION", name: "API tokens", indicator: true });
    expect(errors).toEqual([]);
  });
}, "hooli");
