import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadOrCreateIdentity, readTokenFile } from "./device-state.js";
import { nodeX25519 } from "./x25519-node.js";

let dir = "";
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "wl-device-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("device identity", () => {
  it("is made once (0600, a clamped key) and read back the same on the next start", async () => {
    const first = await loadOrCreateIdentity(join(dir, "state"));
    const path = join(dir, "state", "private.key");
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(first.privateKey[0]! & 7).toBe(0);
    expect(first.publicKey).toBe(Buffer.from(nodeX25519.publicKey(first.privateKey)).toString("base64"));
    const again = await loadOrCreateIdentity(join(dir, "state"));
    expect(again).toEqual(first);
    expect((await readFile(path, "utf8")).trim()).toBe(Buffer.from(first.privateKey).toString("base64"));
  });

  it("refuses a key file others may read, and one that is not a key", async () => {
    await loadOrCreateIdentity(dir);
    await chmod(join(dir, "private.key"), 0o644);
    await expect(loadOrCreateIdentity(dir)).rejects.toThrow(/may be read by others \(mode 644\): chmod 600/);
    await writeFile(join(dir, "private.key"), "hello\n", { mode: 0o600 });
    await chmod(join(dir, "private.key"), 0o600);
    await expect(loadOrCreateIdentity(dir)).rejects.toThrow(/does not hold a base64 WireGuard key/);
  });
});

describe("token file", () => {
  it("reads a token from an owner-only file, trimmed", async () => {
    const path = join(dir, "token");
    await writeFile(path, "  secret-token-1234\n", { mode: 0o600 });
    expect(await readTokenFile(path)).toBe("secret-token-1234");
  });

  it("refuses a file others may read, an empty one and a missing one, saying which", async () => {
    const path = join(dir, "token");
    await writeFile(path, "secret\n", { mode: 0o640 });
    await chmod(path, 0o640);
    await expect(readTokenFile(path)).rejects.toThrow(/the token file .* may be read by others \(mode 640\)/);
    await chmod(path, 0o600);
    await writeFile(path, "\n");
    await expect(readTokenFile(path)).rejects.toThrow(/is empty/);
    await writeFile(path, "two words\n");
    await expect(readTokenFile(path)).rejects.toThrow(/more than one word/);
    await expect(readTokenFile(join(dir, "missing"))).rejects.toThrow(/ENOENT/);
  });
});
