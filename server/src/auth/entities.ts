// The identity tables: auth providers (OIDC issuers an account signs in with) and sign-in challenges
// (the one-time secrets of a sign-in in progress: a magic link, an emailed code, an OIDC flow).

import { EntitySchema } from "typeorm";
import type { TenantRow } from "../database/entities.js";

export interface AuthProvider extends TenantRow {
  kind: "oidc";
  name: string;
  /** The OpenID Provider's issuer identifier; its discovery document is under it. */
  issuer: string;
  clientId: string;
  /**
   * The client secret the provider issued us, stored as given: a secret at rest, which the database
   * must be protected for. It is never returned by the API nor written to the change log.
   */
  clientSecret: string;
  /** Space-separated scopes to request; always includes openid and email. */
  scopes: string;
  createdAt: Date;
}

export type ChallengeKind = "magic_link" | "email_code" | "oidc";

export interface SignInChallenge extends TenantRow {
  kind: ChallengeKind;
  /** Who signs in: known for magic links and email codes, learnt from the provider for OIDC. */
  actorId: string | null;
  providerId: string | null;
  /** SHA-256 of the secret the holder presents (link token, code, or OIDC flow cookie). */
  secretHash: string;
  /** Wrong guesses so far (email codes). */
  attempts: number;
  expiresAt: Date;
  /** When it was used or burnt; a challenge is good once. */
  usedAt: Date | null;
  createdAt: Date;
}

const tenantKey = {
  accountId: { name: "account_id", type: "uuid", primary: true },
  id: { type: "uuid", primary: true },
} as const;

export const AuthProviderEntity = new EntitySchema<AuthProvider>({
  name: "AuthProvider",
  tableName: "auth_providers",
  columns: {
    ...tenantKey,
    kind: { type: "text" },
    name: { type: "text" },
    issuer: { type: "text" },
    clientId: { name: "client_id", type: "text" },
    clientSecret: { name: "client_secret", type: "text" },
    scopes: { type: "text" },
    createdAt: { name: "created_at", type: "timestamptz", createDate: true },
  },
});

export const SignInChallengeEntity = new EntitySchema<SignInChallenge>({
  name: "SignInChallenge",
  tableName: "sign_in_challenges",
  columns: {
    ...tenantKey,
    kind: { type: "text" },
    actorId: { name: "actor_id", type: "uuid", nullable: true },
    providerId: { name: "provider_id", type: "uuid", nullable: true },
    secretHash: { name: "secret_hash", type: "text" },
    attempts: { type: "int" },
    expiresAt: { name: "expires_at", type: "timestamptz" },
    usedAt: { name: "used_at", type: "timestamptz", nullable: true },
    createdAt: { name: "created_at", type: "timestamptz", createDate: true },
  },
});

export const IDENTITY_ENTITIES = [AuthProviderEntity, SignInChallengeEntity];
