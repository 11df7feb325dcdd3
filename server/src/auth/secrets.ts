// Bearer secrets for every token kind (browser sessions, clients, gateways, relays, API clients).
// A token reads `wl<kind letter>_<token id>.<secret>`: the id finds the row (tokens.id is unique across
// accounts, so a token names its own account), the secret proves possession. Only SHA-256 of the
// secret is stored: the secret is 32 random bytes, so a slow password hash would add nothing but
// latency, and the database never holds anything that signs in. The full token is shown once.

import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import type { TokenKind } from "../database/entities.js";

const PREFIX: Record<TokenKind, string> = { browser: "wlb", client: "wlc", gateway: "wlg", relay: "wlr", api: "wla" };
const SECRET_BYTES = 32;
const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const TOKEN = new RegExp(`^(wl[bcgra])_(${UUID})\\.([A-Za-z0-9_-]{43})$`);

export interface IssuedSecret {
  id: string;
  /** The whole token, for the holder only: never stored, never logged. */
  token: string;
  secretHash: string;
}

export const hashSecret = (secret: string): string => createHash("sha256").update(secret).digest("hex");

/** A fresh token of a kind: its id, the token to hand out, and the hash to store. */
export function issueSecret(kind: TokenKind): IssuedSecret {
  const id = randomUUID();
  const secret = randomBytes(SECRET_BYTES).toString("base64url");
  return { id, token: `${PREFIX[kind]}_${id}.${secret}`, secretHash: hashSecret(secret) };
}

/** The parts of a token, or undefined when it is not one of ours (wrong shape, unknown prefix). */
export function parseToken(token: string): { kind: TokenKind; id: string; secret: string } | undefined {
  const match = TOKEN.exec(token);
  if (match === null) return undefined;
  const kind = (Object.keys(PREFIX) as TokenKind[]).find((k) => PREFIX[k] === match[1]);
  return kind === undefined ? undefined : { kind, id: match[2]!, secret: match[3]! };
}

/** Whether `secret` hashes to `storedHash`, in time that does not depend on where they differ. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), "hex");
  const b = Buffer.from(storedHash, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The CSRF token of a browser session: derived from the session secret, so it needs no storage, and
 * a page of another origin cannot compute it (it cannot read the HttpOnly session cookie).
 */
export function csrfTokenFor(sessionSecret: string): string {
  return createHash("sha256").update("wardline csrf\0").update(sessionSecret).digest("base64url");
}
