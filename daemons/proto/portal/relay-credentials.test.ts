// The relay's TURN secret is the same whether derived from the token secret (the relay) or from its
// stored hash (the portal), differs per token, and the credentials minted under it are the ones the
// relay's own check accepts.

import { createHash, createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { checkUsername, passwordFor } from "../stun/credentials.js";
import { relayCredentials, relayTurnSecret, relayTurnSecretFromTokenSecret } from "./relay-credentials.js";

describe("relay TURN credentials", () => {
  it("derive the same secret on both sides, and a different one per token", () => {
    const secret = "s3cr3t-token-part_abcdefghijklmnopqrstuvwxyz01";
    const stored = createHash("sha256").update(secret).digest("hex");
    expect(relayTurnSecretFromTokenSecret(secret)).toBe(relayTurnSecret(stored));
    expect(relayTurnSecret(stored)).toBe(createHmac("sha256", stored).update("wardline turn v1").digest("hex"));
    expect(relayTurnSecretFromTokenSecret(`${secret}x`)).not.toBe(relayTurnSecret(stored));
  });

  it("mint credentials the relay's check accepts until they expire", () => {
    const turnSecret = relayTurnSecret("ab".repeat(32));
    const creds = relayCredentials(turnSecret, "8b0c3f2e-4f57-4b1e-9d0c-1f2e3d4c5b6a", 1_900_000_000);
    expect(creds.username).toBe("1900000000:8b0c3f2e-4f57-4b1e-9d0c-1f2e3d4c5b6a");
    expect(creds.password).toBe(passwordFor(turnSecret, creds.username));
    expect(checkUsername(creds.username, 1_899_999_999)).toMatchObject({ ok: true, id: "8b0c3f2e-4f57-4b1e-9d0c-1f2e3d4c5b6a" });
    expect(checkUsername(creds.username, 1_900_000_001)).toMatchObject({ ok: false, reason: "expired" });
  });
});
