// The rules of actors, whoever asks: an email for people (users, admins) and none for machines
// (service accounts, API clients), unique per account whatever its case; a type changes only between
// user and admin; and an account always keeps an enabled admin, so nobody locks everyone out.
//
// The last-admin rule is a rule over a set of rows, so a check-then-write would race: two requests
// disabling the account's two admins at once would each see the other still enabled. Every change
// that can take an admin away therefore locks the account's enabled admins (FOR UPDATE) in its
// transaction first; the second request waits, then sees the first one's result.

import { IsNull, Not, Raw } from "typeorm";
import type { AccountScope } from "../database/account-scope.js";
import { ActorEntity, type Actor, type ActorType } from "../database/entities.js";
import { Problem } from "../http/problem.js";

export const ACTOR_TYPES: readonly ActorType[] = ["user", "admin", "service_account", "api_client"];

/** Types that are people and sign in with an email; the others are machines and have none. */
export const PEOPLE: readonly ActorType[] = ["user", "admin"];

export interface ActorView {
  id: string;
  type: ActorType;
  name: string;
  email: string | null;
  disabled_at: string | null;
  created_at: string;
  updated_at: string;
}

/** The JSON of an actor; the password hash never leaves the database. */
export const actorView = (a: Actor): ActorView => ({
  id: a.id,
  type: a.type,
  name: a.name,
  email: a.email,
  disabled_at: a.disabledAt?.toISOString() ?? null,
  created_at: a.createdAt.toISOString(),
  updated_at: a.updatedAt.toISOString(),
});

export interface ActorPatch {
  type?: ActorType;
  name?: string;
  /** null clears it (only a machine's, which has none anyway). */
  email?: string | null;
}

/** Creates and changes actors under the email and last-admin rules. */
export class ActorsService {
  async create(scope: AccountScope, values: { type: ActorType; name: string; email: string | null }): Promise<Actor> {
    if (values.email !== null) await this.emailFree(scope, values.email, null);
    return scope.repository(ActorEntity).insert({ ...values, passwordHash: null, disabledAt: null });
  }

  async existing(scope: AccountScope, id: string): Promise<Actor> {
    const actor = await scope.repository(ActorEntity).get(id);
    if (actor === null) throw Problem.notFound("the actor");
    return actor;
  }

  async update(scope: AccountScope, id: string, patch: ActorPatch): Promise<Actor> {
    return scope.transaction(async (tx) => {
      const admins = await this.lockEnabledAdmins(tx);
      const actor = await this.existing(tx, id);
      const type = patch.type ?? actor.type;
      if (type !== actor.type && !(PEOPLE.includes(type) && PEOPLE.includes(actor.type))) {
        throw Problem.invalid([{ field: "type", code: "type.not_changeable", message: `a ${actor.type.replace("_", " ")} cannot become a ${type.replace("_", " ")}: only users and admins change into each other` }]);
      }
      const email = patch.email !== undefined ? patch.email : actor.email;
      if (PEOPLE.includes(type) && email === null) throw Problem.invalid([{ field: "email", code: "email.required", message: `a ${type} needs an email` }]);
      if (!PEOPLE.includes(type) && email !== null) throw Problem.invalid([{ field: "email", code: "email.not_allowed", message: `a ${type.replace("_", " ")} has no email` }]);
      if (email !== null && email !== actor.email) await this.emailFree(tx, email, actor.id);
      if (actor.type === "admin" && type !== "admin" && actor.disabledAt === null) this.keepsAnAdmin(admins, actor.id);
      const changed = await tx.repository(ActorEntity).update(actor.id, { ...patch, email });
      return changed!;
    });
  }

  /** Disables an actor, which makes all its tokens fail at once; disabling a disabled actor changes nothing. */
  async disable(scope: AccountScope, callerId: string | null, id: string): Promise<Actor> {
    if (id === callerId) throw Problem.conflict("an actor cannot disable itself: ask another admin", undefined, "cannot_disable_self");
    return scope.transaction(async (tx) => {
      const admins = await this.lockEnabledAdmins(tx);
      const actor = await this.existing(tx, id);
      if (actor.disabledAt !== null) return actor;
      if (actor.type === "admin") this.keepsAnAdmin(admins, actor.id);
      return (await tx.repository(ActorEntity).update(actor.id, { disabledAt: new Date() }))!;
    });
  }

  async enable(scope: AccountScope, id: string): Promise<Actor> {
    const actor = await this.existing(scope, id);
    if (actor.disabledAt === null) return actor;
    const enabled = await scope.repository(ActorEntity).update(actor.id, { disabledAt: null });
    if (enabled === null) throw Problem.notFound("the actor");
    return enabled;
  }

  /** Deletes an actor with its tokens, devices and memberships. */
  async remove(scope: AccountScope, callerId: string | null, id: string): Promise<void> {
    if (id === callerId) throw Problem.conflict("an actor cannot delete itself: ask another admin", undefined, "cannot_delete_self");
    await scope.transaction(async (tx) => {
      const admins = await this.lockEnabledAdmins(tx);
      const actor = await this.existing(tx, id);
      if (actor.type === "admin" && actor.disabledAt === null) this.keepsAnAdmin(admins, actor.id);
      await tx.repository(ActorEntity).delete(actor.id);
    });
  }

  private lockEnabledAdmins(tx: AccountScope): Promise<Actor[]> {
    return tx.repository(ActorEntity).list({ where: { type: "admin", disabledAt: IsNull() }, lock: "pessimistic_write" });
  }

  private keepsAnAdmin(enabledAdmins: Actor[], leaving: string): void {
    if (!enabledAdmins.some((a) => a.id !== leaving)) {
      throw Problem.conflict("this is the account's last enabled admin: make another admin first", undefined, "last_admin");
    }
  }

  /** 409 when another actor of the account has this email in any case; the unique index backs this up. */
  private async emailFree(scope: AccountScope, email: string, except: string | null): Promise<void> {
    const sameEmail = Raw((column) => `lower(${column}) = lower(:email)`, { email });
    const taken = await scope.repository(ActorEntity).count(except === null ? { email: sameEmail } : { email: sameEmail, id: Not(except) });
    if (taken > 0) {
      throw Problem.conflict("another actor of this account has this email", [{ field: "email", code: "email.taken", message: "another actor of this account has this email" }], "email_taken");
    }
  }
}
