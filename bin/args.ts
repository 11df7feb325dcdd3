// What every `wardline` command shares on its command line: exit statuses, option parsing through
// node:util parseArgs (whose error messages are cut to their first sentence), ports and listening
// addresses, and the version.

import { readFileSync } from "node:fs";
import { isIPv4, isIPv6 } from "node:net";
import { join } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { repoRoot } from "../bench/harness.js";

export const EXIT_OK = 0;
/** A command failed at run time. */
export const EXIT_FAILURE = 1;
/** The command line was wrong. */
export const EXIT_USAGE = 2;

type Options = NonNullable<ParseArgsConfig["options"]>;
export type ParsedCommandLine<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>>;

/** Parses argv strictly (unknown options are errors), positionals allowed; or says what is wrong. */
export function parseCommandLine<O extends Options>(argv: readonly string[], options: O): ParsedCommandLine<O> | { error: string } {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    // "Unknown option '--x'. To specify a positional argument starting with a '-', ..." → "unknown option '--x'"
    const message = error instanceof Error ? error.message : String(error);
    const first = message.split(/\.\s/)[0] ?? message;
    return { error: first.charAt(0).toLowerCase() + first.slice(1) };
  }
}

/** A port number from text, or an Error naming `what` (the flag or variable it came from). */
export function parsePort(text: string, what: string, min = 0): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535 || Number(text) < min) throw new Error(`${what} must be a port (${min}-65535), got '${text}'`);
  return Number(text);
}

/** An `addr:port` (or `[v6]:port`) listening address from text, or an Error naming `what`. */
export function parseListenAddress(text: string, what: string): { host: string; port: number } {
  const colon = text.lastIndexOf(":");
  const host = colon <= 0 ? "" : text.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  if (!isIPv4(host) && !isIPv6(host)) throw new Error(`${what} must be addr:port (or [v6]:port) or off, got '${text}'`);
  return { host, port: parsePort(text.slice(colon + 1), `${what} port`) };
}

/** This checkout's version, from package.json ("unknown" when it cannot be read). */
export function packageVersion(): string {
  try {
    const manifest = JSON.parse(readFileSync(join(repoRoot(), "package.json"), "utf8")) as { version?: string };
    return manifest.version ?? "unknown";
  } catch {
    return "unknown";
  }
}
