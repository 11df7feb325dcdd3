// One-time sign-in secrets (magic links, emailed codes, OIDC flows): the row keeps a hash of the
// secret salted with its own id, an expiry and a use mark. Using one locks its row (FOR UPDATE), so
// of two concurrent uses exactly one wins.

import { randomBytes, randomInt } from "node:crypto";
import { randomUUID } from "node:crypto";
import { IsNull, LessThan } from "typeorm";
import type { AccountScope } from "../database/account-scope.js";
import { SignInChallengeEntity, type ChallengeKind, type SignInChallenge } from "./entities.js";
import { hashSecret, secretMatches } from "./secrets.js";

export const MAGIC_LINK_TTL_MS = 15 * 60_000;
export const EMAIL_CODE_TTL_MS = 10 * 60_000;
export const OIDC_FLOW_TTL_MS = 10 * 60_000;
export const EMAIL_CODE_DIGITS = 8;
export const EMAIL_CODE_TRIES = 5;
/** Challenges are kept this long past their expiry (for inspection), then swept. */
export const CHALLENGE_KEEP_MS = 24 * 3_600_000;

const challengeHash = (id: string, secret: string): string => hashSecret(`${id}.${secret}`);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const randomCode = (): string => String(randomInt(0, 10 ** EMAIL_CODE_DIGITS)).padStart(EMAIL_CODE_DIGITS, "0");

/** A new challenge; `secret` is the holder's, shown once (a random one unless given, as for codes). */
export async function createChallenge(
  scope: AccountScope,
  values: { kind: ChallengeKind; actorId?: string | null; providerId?: string | null; ttlMs: number; secret?: string },
): Promise<{ row: SignInChallenge; secret: string }> {
  // Each new challenge sweeps its account's long-expired ones, so the table stays as large as the
  // sign-ins of the last day, however many flows are started and abandoned (OIDC starts are public).
  await scope.repository(SignInChallengeEntity).sweep({ expiresAt: LessThan(new Date(Date.now() - CHALLENGE_KEEP_MS)) });
  const id = randomUUID();
  const secret = values.secret ?? randomBytes(32).toString("base64url");
  const row = await scope.repository(SignInChallengeEntity).insert({
    id,
    kind: values.kind,
    actorId: values.actorId ?? null,
    providerId: values.providerId ?? null,
    secretHash: challengeHash(id, secret),
    attempts: 0,
    expiresAt: new Date(Date.now() + values.ttlMs),
    usedAt: null,
  });
  return { row, secret };
}

/** `<id>.<secret>`: how a link or a cookie carries a challenge. */
export const challengeToken = (row: SignInChallenge, secret: string): string => `${row.id}.${secret}`;

/**
 * Uses the challenge a `<id>.<secret>` token names, if it is of `kind`, unused, unexpired, its secret
 * right and `accept` agrees; marks it used and returns it. Otherwise null, with nothing changed.
 */
export async function redeemChallenge(
  scope: AccountScope,
  kind: ChallengeKind,
  token: string,
  accept: (row: SignInChallenge) => boolean = () => true,
): Promise<SignInChallenge | null> {
  const dot = token.indexOf(".");
  const id = token.slice(0, dot);
  const secret = token.slice(dot + 1);
  if (dot < 0 || !UUID.test(id) || secret.length === 0 || secret.length > 100) return null;
  return scope.transaction(async (tx) => {
    const challenges = tx.repository(SignInChallengeEntity);
    const [row] = await challenges.list({ where: { id, kind, usedAt: IsNull() }, lock: "pessimistic_write" });
    if (row === undefined || row.expiresAt.getTime() <= Date.now()) return null;
    if (!secretMatches(`${id}.${secret}`, row.secretHash) || !accept(row)) return null;
    return challenges.update(id, { usedAt: new Date() });
  });
}

/** Burns every live challenge of `kind` for the actor: a new code replaces the old. */
export async function burnChallenges(scope: AccountScope, kind: ChallengeKind, actorId: string): Promise<void> {
  const challenges = scope.repository(SignInChallengeEntity);
  for (const row of await challenges.list({ where: { kind, actorId, usedAt: IsNull() } })) await challenges.update(row.id, { usedAt: new Date() });
}

/**
 * Checks an emailed code against the actor's newest live one: right uses it up; wrong counts a try,
 * and the last allowed wrong try burns it.
 */
export async function redeemCode(scope: AccountScope, actorId: string, code: string): Promise<boolean> {
  return scope.transaction(async (tx) => {
    const challenges = tx.repository(SignInChallengeEntity);
    const [row] = await challenges.list({
      where: { kind: "email_code", actorId, usedAt: IsNull() },
      order: { createdAt: "DESC" },
      take: 1,
      lock: "pessimistic_write",
    });
    if (row === undefined || row.expiresAt.getTime() <= Date.now()) return false;
    if (secretMatches(`${row.id}.${code}`, row.secretHash)) {
      await challenges.update(row.id, { usedAt: new Date() });
      return true;
    }
    const attempts = row.attempts + 1;
    await challenges.update(row.id, { attempts, ...(attempts >= EMAIL_CODE_TRIES ? { usedAt: new Date() } : {}) });
    return false;
  });
}
