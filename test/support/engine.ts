// What the engine tests share: the builds every crypto test runs against, the checks and fixtures
// several files use, and the one sanctioned way to look inside an engine's WebAssembly memory.

import { expect } from "vitest";
import { EngineError, TransportStatus, type Engine, type EngineBuild, type SessionKeys } from "../../daemons/engine/index.js";
import type { Rng } from "./prng.js";

/** Every crypto test runs against both builds: debug (unoptimised, assertions on) and release. */
export const BUILDS: readonly EngineBuild[] = ["debug", "release"];

/** A per-packet status by name, so a failing assertion reads "AuthFailed" rather than 8. */
export const statusName = (s: number): string => TransportStatus[s] ?? `unknown status ${s}`;

/** Random keys and indices for a session (indices random unless given). */
export function randomKeys(r: Rng, localIndex = r.u32(), remoteIndex = r.u32()): SessionKeys {
  return { localIndex, remoteIndex, sendKey: r.bytes(32), recvKey: r.bytes(32) };
}

/** Throws unless fn throws an EngineError with this code and a message (not a TypeError or the like). */
export function expectCode(fn: () => unknown, expected: string, where: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, `${where}: should throw EngineError ${expected}`).toBeInstanceOf(EngineError);
  expect((thrown as EngineError).code, `${where}: ${(thrown as Error).message}`).toBe(expected);
  expect((thrown as Error).message.length, `${where}: message`).toBeGreaterThan(10);
}

/**
 * The engine's whole WebAssembly memory. Tests reach inside only to prove what the public API cannot
 * show: that secrets are wiped after use and that a rejected packet's bytes were left untouched.
 * The binding keeps this view private on purpose; nothing outside tests may use it.
 */
export function engineMemory(engine: Engine): Uint8Array {
  const mem = (engine as unknown as { mem?: unknown }).mem;
  if (!(mem instanceof Uint8Array)) throw new Error("engine.mem is no longer a Uint8Array: update test/support/engine.ts");
  return mem;
}

/** Offsets at which needle occurs in haystack (needle must be non-empty). */
export function occurrences(haystack: Uint8Array, needle: Uint8Array): number[] {
  const found: number[] = [];
  const first = needle[0];
  if (first === undefined) throw new Error("occurrences: empty needle");
  let at = haystack.indexOf(first);
  while (at >= 0 && at + needle.length <= haystack.length) {
    let match = true;
    for (let j = 1; j < needle.length; j++) {
      if (haystack[at + j] !== needle[j]) {
        match = false;
        break;
      }
    }
    if (match) found.push(at);
    at = haystack.indexOf(first, at + 1);
  }
  return found;
}
