// What every `wardline` command shares on its command line: exit statuses and option parsing
// through node:util parseArgs, whose error messages are cut to their first sentence.

import { parseArgs, type ParseArgsConfig } from "node:util";

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
