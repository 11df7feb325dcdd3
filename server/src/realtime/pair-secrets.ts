// The secrets of a client-gateway pair: the WireGuard preshared key and both sides' ICE credentials.
// They are derived, not drawn: HMAC-SHA256 under the portal's shared secret, over the account and both
// public keys. Every portal node derives the same values for the same pair, so a second authorization
// between a client and a gateway (another resource, a reconnect, another node) hands out the key the
// tunnel already uses instead of breaking it. Changing either key gives a new, unrelated pair.

import { createHmac, randomBytes } from "node:crypto";
import type { DataSource } from "typeorm";

export const PAIR_SECRET_NAME = "pair_secrets_v1";

export interface PairSecrets {
  /** WireGuard preshared key, 32 bytes in base64. */
  presharedKey: string;
  clientIce: { username: string; password: string };
  gatewayIce: { username: string; password: string };
}

/** The portal's shared secret of `name`, made by the first node to ask and read by all others. */
export async function sharedSecret(db: DataSource, name: string): Promise<Buffer> {
  const fresh = randomBytes(32).toString("base64url");
  await db.query(`INSERT INTO portal_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, [name, fresh]);
  const rows = (await db.query(`SELECT secret FROM portal_secrets WHERE name = $1`, [name])) as { secret: string }[];
  return Buffer.from(rows[0]!.secret, "base64url");
}

/** Derives one pair's secrets; `secret` is sharedSecret(PAIR_SECRET_NAME). */
export function pairSecrets(secret: Buffer, accountId: string, clientPublicKey: string, gatewayPublicKey: string): PairSecrets {
  const derive = (label: string): Buffer => createHmac("sha256", secret).update(`${label}\0${accountId}\0${clientPublicKey}\0${gatewayPublicKey}`).digest();
  // ICE (RFC 8445 section 5.3): ufrag at least 4 characters, password at least 22, from ice-char.
  const ice = (side: string) => ({
    username: derive(`ice-ufrag ${side}`).toString("base64").slice(0, 8),
    password: derive(`ice-pwd ${side}`).toString("base64").slice(0, 32),
  });
  return { presharedKey: derive("wireguard psk").toString("base64"), clientIce: ice("client"), gatewayIce: ice("gateway") };
}
