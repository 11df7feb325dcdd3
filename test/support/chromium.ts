// Debian's Chromium driven through playwright-core, for the browser tests and `wardline bench ui`:
// where it is, how it is started, and the reason it cannot run when it cannot.

import { existsSync } from "node:fs";

export type Playwright = typeof import("playwright-core");

export const CHROMIUM = process.env.WARDLINE_CHROMIUM ?? "/usr/bin/chromium";
/** As the machine notes say: without the background-networking flags Chromium keeps dialling out. */
export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** playwright-core, or why Chromium cannot be driven here. */
export async function loadPlaywright(): Promise<Playwright | string> {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (Debian package chromium; or set WARDLINE_CHROMIUM)`;
  try {
    return await import("playwright-core");
  } catch (error) {
    return `playwright-core is not installed: ${(error as Error).message}`;
  }
}
