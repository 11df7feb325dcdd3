// TURN REST API credentials (coturn `use-auth-secret`): the password against node:crypto's HMAC,
// the expiry boundary as coturn draws it, malformed usernames, and the whole path a relay takes: a
// client's Allocate signed with the minted password, checked with only the shared secret.

import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { StunBuilder } from "./builder.js";
import { METHOD_ALLOCATE, TRANSPORT_UDP } from "./constants.js";
import { checkUsername, mintCredentials, passwordFor } from "./credentials.js";
import { longTermKey, verifyIntegrity } from "./integrity.js";
import { decodeStun } from "./message.js";

const SECRET = "north-relay-shared-secret";

describe("TURN REST API credentials", () => {
  it("mints <expiry>:<id> with password base64(HMAC-SHA1(secret, username)), as node:crypto computes it", () => {
    const credentials = mintCredentials(SECRET, "client-7f3a", 1_767_225_600);
    expect(credentials.username).toBe("1767225600:client-7f3a");
    const expected = createHmac("sha1", SECRET).update("1767225600:client-7f3a").digest("base64");
    expect(credentials.password).toBe(expected);
    expect(passwordFor(new TextEncoder().encode(SECRET), credentials.username), "a byte secret").toBe(expected);
    expect(passwordFor("other-secret", credentials.username)).not.toBe(expected);
    // A non-ASCII id and secret: both UTF-8, as coturn and node read them.
    const unicode = mintCredentials("sécret", "usér", 5);
    expect(unicode.password).toBe(createHmac("sha1", Buffer.from("sécret", "utf8")).update(Buffer.from("5:usér", "utf8")).digest("base64"));
  });

  it("is good until and during its expiry second, refused after (coturn: timestamp >= now)", () => {
    const { username } = mintCredentials(SECRET, "c", 1000);
    expect(checkUsername(username, 0)).toEqual({ ok: true, expiresAtUnix: 1000, id: "c" });
    expect(checkUsername(username, 1000)).toEqual({ ok: true, expiresAtUnix: 1000, id: "c" });
    expect(checkUsername(username, 1001)).toMatchObject({ ok: false, reason: "expired" });
    expect(checkUsername("0:c", 0)).toMatchObject({ ok: true });
  });

  it("refuses malformed usernames", () => {
    const malformed = [
      "", "client", ":client", "1000", "1000:", "-1000:c", "+1000:c", "0x3e8:c", "1e3:c", "1000.0:c", " 1000:c", "1000 :c",
      "01000:c", "9007199254740992:c", "99999999999999999999:c", "c:1000", "１０００:c",
    ];
    for (const username of malformed) expect(checkUsername(username, 0), JSON.stringify(username)).toMatchObject({ ok: false, reason: "malformed" });
    expect(checkUsername("1000:a:b", 0), "the id may hold ':'").toEqual({ ok: true, expiresAtUnix: 1000, id: "a:b" });
    expect(checkUsername("9007199254740991:c", 0)).toMatchObject({ ok: true });
  });

  it("refuses to mint what it could not check", () => {
    expect(() => mintCredentials(SECRET, "", 1000)).toThrow(RangeError);
    expect(() => mintCredentials(SECRET, "c", -1)).toThrow(RangeError);
    expect(() => mintCredentials(SECRET, "c", 1.5)).toThrow(RangeError);
    expect(() => mintCredentials(SECRET, "c".repeat(600), 1000)).toThrow(RangeError);
  });

  it("a relay holding only the secret checks a client's Allocate signed with minted credentials", () => {
    const realm = "wardline";
    const { username, password } = mintCredentials(SECRET, "client-1", 2000);
    const request = new StunBuilder(METHOD_ALLOCATE, "request", new Uint8Array(12).fill(7))
      .addRequestedTransport(TRANSPORT_UDP).addUsername(username).addRealm(realm).addNonce("n0nce")
      .build({ integrity: longTermKey(username, realm, password), fingerprint: true });

    const decoded = decodeStun(request);
    if (!decoded.ok) throw new Error(decoded.detail);
    const m = decoded.message;
    const check = checkUsername(m.username()!, 1999);
    expect(check).toMatchObject({ ok: true, id: "client-1" });
    const key = longTermKey(m.username()!, m.realm()!, passwordFor(SECRET, m.username()!));
    expect(verifyIntegrity(m, request, key)).toEqual({ ok: true });
    expect(verifyIntegrity(m, request, longTermKey(m.username()!, m.realm()!, passwordFor("wrong", m.username()!)))).toEqual({ ok: false, reason: "mismatch" });
    expect(checkUsername(m.username()!, 2001)).toMatchObject({ ok: false, reason: "expired" });
  });
});
