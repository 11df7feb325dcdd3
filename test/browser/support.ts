// What the browser tests share: Debian's Chromium through playwright-core (or the reason it cannot
// run: a skip on a laptop, a failure under CI), a portal on the embedded database with an admin,
// a signed-in page at 1280×800, and screenshots into test-artifacts/screenshots/.

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initAdmin, type InitializedAdmin } from "../../server/src/auth/init-admin.js";
import { startPortal, type Portal } from "../../server/src/portal.js";
import type { ScriptedDevice } from "../../server/src/testing/device.js";
import { CHROMIUM_ARGS, CHROMIUM, type Playwright } from "../support/chromium.js";

export type Browser = import("playwright-core").Browser;
export type Page = import("playwright-core").Page;
export type BrowserContext = import("playwright-core").BrowserContext;
export { CHROMIUM, loadPlaywright, type Playwright } from "../support/chromium.js";

export const SHOTS = join(process.cwd(), "test-artifacts", "screenshots");

/** Inside a describe: when the browser is missing, one failing test under CI, else one skipped test that says why. Returns true when missing. */
export function browserMissing(playwright: Playwright | string): playwright is string {
  if (typeof playwright !== "string") return false;
  if (process.env.CI === "true") {
    it("runs under CI", () => {
      throw new Error(`the browser tests cannot run under CI: ${playwright}`);
    });
  } else {
    console.log(`skipping the browser tests: ${playwright}`);
    it.skip(`needs Chromium and playwright-core (${playwright})`, () => undefined);
  }
  return true;
}

/** A portal (embedded database, port 0), Chromium, and an admin of account `slug`. */
export interface BrowserLab {
  portal: Portal;
  browser: Browser;
  admin: InitializedAdmin;
  slug: string;
  /** A context at 1280×800 whose page is signed in as the admin, on the sites page; errors the page throws or logs are collected. */
  signedIn(): Promise<{ context: BrowserContext; page: Page; errors: string[] }>;
  /** Writes a screenshot of `page` as test-artifacts/screenshots/<name>.png. */
  shot(page: Page, name: string): Promise<void>;
  close(): Promise<void>;
}

export async function startBrowserLab(playwright: Playwright, slug = "acme"): Promise<BrowserLab> {
  const dir = mkdtempSync(join(tmpdir(), "wardline-browser-"));
  const portal = await startPortal({ host: "127.0.0.1", port: 0, database: { dataDir: join(dir, "data") } });
  let browser: Browser | undefined;
  try {
    browser = await playwright.chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const admin = await initAdmin(portal.database, { email: `admin@${slug}.test`, slug, publicUrl: portal.url });
    mkdirSync(SHOTS, { recursive: true });
    const lab: BrowserLab = {
      portal,
      browser,
      admin,
      slug,
      async signedIn() {
        const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
        const page = await context.newPage();
        const errors = collectErrors(page);
        await page.goto(`${portal.url}/${slug}/sign_in`);
        const form = page.getByRole("form", { name: "Sign in with a password" });
        await form.getByLabel("Email").fill(admin.admin.email!);
        await form.getByLabel("Password").fill(admin.password);
        await form.getByRole("button", { name: "Sign in" }).click();
        await page.waitForURL(`${portal.url}/${slug}/sites`);
        return { context, page, errors };
      },
      shot: async (page, name) => {
        await page.screenshot({ path: join(SHOTS, `${name}.png`) });
      },
      async close() {
        await browser?.close();
        await portal.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return lab;
  } catch (error) {
    await browser?.close();
    await portal.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Errors a page throws or logs. Refusals a test provokes (401, 403, 404, 409, 422) show in Chromium's
 * console as failed loads and are not errors of the UI; anything else is.
 */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error" && !/status of (401|403|404|409|422) /.test(message.text())) errors.push(message.text());
  });
  return errors;
}

/** The error text shown beside `input` (lib.js field()), once the input is marked invalid. */
export async function errorBeside(page: Page, input: ReturnType<Page["getByLabel"]>): Promise<string | null> {
  await expect.poll(() => input.getAttribute("aria-invalid")).toBe("true");
  return page.locator(`[id="${await input.getAttribute("aria-describedby")}"]`).textContent();
}

/**
 * describe(title) over a BrowserLab: the reason it cannot run (browserMissing), else a lab started
 * before the tests and closed after them, with the scripted devices the tests opened. `body` gets
 * the lab (through a getter: it exists once beforeAll ran) and the list to put devices in.
 */
export function browserSuite(
  title: string,
  playwright: Playwright | string,
  body: (lab: () => BrowserLab, devices: ScriptedDevice[]) => void,
  slug?: string,
): void {
  describe(title, () => {
    if (browserMissing(playwright)) return;
    let lab: BrowserLab | undefined;
    const devices: ScriptedDevice[] = [];
    beforeAll(async () => {
      lab = await startBrowserLab(playwright, slug);
    }, 60_000);
    afterAll(async () => {
      for (const d of devices) await d.close();
      await lab?.close();
    });
    body(() => lab!, devices);
  });
}
