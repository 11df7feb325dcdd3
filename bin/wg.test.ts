// `wardline wg`: its help and every way its command line or configuration can be wrong, each
// refused before anything is created. The running interface is tested end to end in
// test/interop/tunnel.test.ts.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { captureIo } from "../test/support/cli.js";
import { main } from "./cli.js";

const capture = captureIo;

const dir = mkdtempSync(join(tmpdir(), "wardline-wg-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("wardline wg", () => {
  it("documents itself in --help, help wg and the main help", async () => {
    for (const argv of [["wg", "--help"], ["help", "wg"]]) {
      const io = capture();
      expect(await main(argv, io), argv.join(" ")).toBe(0);
      for (const text of ["--config", "--foreground", "/var/run/wireguard", "wireguard-go", "WG_QUICK_USERSPACE_IMPLEMENTATION", "wardline-wg"]) {
        expect(io.out).toContain(text);
      }
    }
    const io = capture();
    await main(["--help"], io);
    expect(io.out).toContain("wg <interface>");
  });

  it("exits 2 with usage on a missing or bad interface name, extra arguments and unknown options", async () => {
    for (const argv of [["wg"], ["wg", "a", "b"], ["wg", "wl0", "--nope"], ["wg", "this-name-is-too-long"], ["wg", "bad/name"]]) {
      const io = capture();
      expect(await main(argv, io), argv.join(" ")).toBe(2);
      expect(io.err).toMatch(/^wardline wg: /);
      expect(io.out).toBe("");
    }
  });

  it("exits 1 naming the file and line when the configuration cannot be read or parsed", async () => {
    const missing = join(dir, "missing.conf");
    let io = capture();
    expect(await main(["wg", "wl0", "--config", missing, "--foreground"], io)).toBe(1);
    expect(io.err).toContain(`cannot read ${missing}`);

    const bad = join(dir, "bad.conf");
    writeFileSync(bad, "[Interface]\nListenPort = 51820\n\n[Peer]\nPublicKey = not-a-key\n");
    io = capture();
    expect(await main(["wg", "wl0", "--config", bad, "--foreground"], io)).toBe(1);
    expect(io.err).toMatch(new RegExp(`^wardline wg: ${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:5: .*PublicKey`, "i"));
  });
});
