// Accounts and their first objects. Creating an account also creates its Everyone group (every user
// and admin, never a service account or API client: membership is computed, not stored). Issuing a
// token writes its hash and hands the secret out once.

import { randomUUID } from "node:crypto";
import type { DataSource } from "typeorm";
import { AccountScope } from "../database/account-scope.js";
import { AccountEntity, ActorEntity, GroupEntity, TokenEntity, type Account, type Actor, type ActorType, type Token, type TokenKind } from "../database/entities.js";
import { issueSecret } from "../auth/secrets.js";

export const EVERYONE = "Everyone";
export const SLUG = /^[a-z0-9][a-z0-9_-]{1,62}$/;

/** A new account with its Everyone group. */
export async function createAccount(db: DataSource, values: { slug: string; name: string }): Promise<Account> {
  return db.transaction(async (manager) => {
    const account = { id: randomUUID(), slug: values.slug, name: values.name };
    await manager.getRepository(AccountEntity).insert(account);
    await new AccountScope(db, account.id, null, manager).repository(GroupEntity).insert({ name: EVERYONE, kind: "everyone" });
    return manager.getRepository(AccountEntity).findOneOrFail({ where: { id: account.id } });
  });
}

export async function createActor(scope: AccountScope, values: { type: ActorType; name: string; email?: string | null; passwordHash?: string | null }): Promise<Actor> {
  return scope.repository(ActorEntity).insert({ type: values.type, name: values.name, email: values.email ?? null, passwordHash: values.passwordHash ?? null, disabledAt: null });
}

export interface IssuedToken {
  row: Token;
  /** The bearer token, shown to its holder once. */
  token: string;
}

/** A token of the scope's account; only its hash is stored. */
export async function issueToken(
  scope: AccountScope,
  values: { kind: TokenKind; actorId?: string | null; siteId?: string | null; name?: string; expiresAt?: Date | null; providerId?: string | null },
): Promise<IssuedToken> {
  const secret = issueSecret(values.kind);
  const row = await scope.repository(TokenEntity).insert({
    id: secret.id,
    kind: values.kind,
    actorId: values.actorId ?? null,
    siteId: values.siteId ?? null,
    name: values.name ?? "",
    secretHash: secret.secretHash,
    expiresAt: values.expiresAt ?? null,
    lastUsedAt: null,
    providerId: values.providerId ?? null,
  });
  return { row, token: secret.token };
}
