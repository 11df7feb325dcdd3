// The CLI's output captured in strings, for tests that run `main` in process.

import type { CliIo } from "../../bin/cli.js";

export type CapturedIo = CliIo & { out: string; err: string };

/** An io for main() that keeps what it writes (stderr is not a terminal). */
export function captureIo(): CapturedIo {
  const io: CapturedIo = {
    out: "",
    err: "",
    stderrIsTty: false,
    stdout: (text) => void (io.out += text),
    stderr: (text) => void (io.err += text),
  };
  return io;
}
