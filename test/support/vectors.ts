// Loads the committed test vectors from ../shared/vectors (beside the repository; CI clones the repo
// with shared/ next to it). WARDLINE_VECTORS overrides the location.
//
// A missing directory fails the test under CI=true, so CI can never go green without the vectors; on
// a developer machine the test is skipped with the reason printed.

import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestContext } from "vitest";

/** The repository root: the nearest directory above this file that holds package.json. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, "package.json"))) return dir;
    dir = dirname(dir);
  }
  throw new Error("test/support/vectors: no package.json above this file");
}

export const VECTORS_DIR: string = resolve(process.env.WARDLINE_VECTORS ?? join(repoRoot(), "..", "shared", "vectors"));

/** Whether this run must fail rather than skip when vectors are missing. */
const inCi = (): boolean => process.env.CI === "true" || process.env.CI === "1";

/**
 * Reads and parses vectors/<relative>. Missing file: throws under CI, otherwise prints the reason
 * and skips the calling test.
 */
export function loadVectors<T>(ctx: TestContext, relative: string): T {
  const path = join(VECTORS_DIR, relative);
  if (!existsSync(path)) {
    const reason = `test vectors not found at ${path} (expected ../shared/vectors beside the repository, or set WARDLINE_VECTORS)`;
    if (inCi()) throw new Error(`${reason}; CI=true, so this is a failure, not a skip`);
    console.warn(`skipping "${ctx.task.suite?.name ?? ""} > ${ctx.task.name}": ${reason}`);
    ctx.skip(reason);
  }
  return JSON.parse(readFileSync(path, "utf8")) as T;
}
