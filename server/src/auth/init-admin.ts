// The first admin of an account (`wardline portal --init-admin`): the account and the admin are made
// if missing, the admin gets a new generated password and a one-time sign-in link. Run again, it
// resets that admin's password: the way back in for a locked-out operator with shell access.

import { randomBytes } from "node:crypto";
import { Raw, type DataSource } from "typeorm";
import { createAccount, createActor, SLUG } from "../accounts/accounts.service.js";
import { AccountScope } from "../database/account-scope.js";
import { AccountEntity, ActorEntity, type Account, type Actor } from "../database/entities.js";
import { challengeToken, createChallenge, MAGIC_LINK_TTL_MS } from "./challenges.js";
import { hashPassword } from "./password-hash.js";
import { isEmail } from "./sessions.js";

export interface InitializedAdmin {
  account: Account;
  admin: Actor;
  createdAccount: boolean;
  createdAdmin: boolean;
  /** The one-time sign-in link, valid MAGIC_LINK_TTL_MS. */
  link: string;
  /** The generated password now set. */
  password: string;
}

/** Account names from slugs: "acme-corp" → "Acme Corp". */
const nameOf = (slug: string): string => slug.split(/[-_]+/).filter(Boolean).map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(" ");

/** What is wrong with initAdmin's input, if anything: checked before a database is opened. */
export function initAdminProblem(options: { email: string; slug: string }): string | undefined {
  if (!SLUG.test(options.slug)) return `account slug '${options.slug}' must be 2-63 of a-z, 0-9, _ and -, starting with a letter or digit`;
  if (!isEmail(options.email)) return `'${options.email}' is not a mail address`;
  return undefined;
}

/** The account and its admin, a new password and a sign-in link; a RangeError when the input cannot be used. */
export async function initAdmin(db: DataSource, options: { email: string; slug: string; publicUrl: string }): Promise<InitializedAdmin> {
  const problem = initAdminProblem(options);
  if (problem !== undefined) throw new RangeError(problem);
  let account = await db.getRepository(AccountEntity).findOne({ where: { slug: options.slug } });
  const createdAccount = account === null;
  account ??= await createAccount(db, { slug: options.slug, name: nameOf(options.slug) });
  const scope = new AccountScope(db, account.id, null);
  const actors = scope.repository(ActorEntity);
  const [existing] = await actors.list({ where: { email: Raw((c) => `lower(${c}) = lower(:email)`, { email: options.email }) }, take: 1 });
  if (existing !== undefined && existing.type !== "admin") throw new RangeError(`${options.email} is already a ${existing.type.replace("_", " ")} of ${options.slug}, not an admin`);
  if (existing !== undefined && existing.disabledAt !== null) throw new RangeError(`${options.email} is a disabled admin of ${options.slug}: enable it first`);
  const password = randomBytes(18).toString("base64url");
  const passwordHash = await hashPassword(password);
  const admin = existing === undefined
    ? await createActor(scope, { type: "admin", name: options.email.split("@")[0]!, email: options.email, passwordHash })
    : (await actors.update(existing.id, { passwordHash }))!;
  const { row, secret } = await createChallenge(new AccountScope(db, account.id, admin.id), { kind: "magic_link", actorId: admin.id, ttlMs: MAGIC_LINK_TTL_MS });
  const link = `${options.publicUrl}/api/auth/${encodeURIComponent(account.slug)}/magic?token=${encodeURIComponent(challengeToken(row, secret))}`;
  return { account, admin, createdAccount, createdAdmin: existing === undefined, link, password };
}

