// /api/actors: the account's users, admins, service accounts and API clients; disabling one stops all
// its tokens at once (the auth guard refuses a disabled actor's tokens).

import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query } from "@nestjs/common";
import { ApiBearerAuth, ApiBody, ApiConflictResponse, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiQuery, ApiTags } from "@nestjs/swagger";
import { Caller, Scope } from "../auth/access.js";
import type { Principal } from "../auth/principal.js";
import type { AccountScope } from "../database/account-scope.js";
import { ActorEntity, type ActorType } from "../database/entities.js";
import { BodyReader, idParam, listBody, PAGE_QUERY_DOCS, pageQuery, type ListBody } from "../http/input.js";
import type { Schema } from "../http/openapi.js";
import { Problem } from "../http/problem.js";
import { ACTOR_TYPES, actorView, ActorsService, PEOPLE, type ActorPatch, type ActorView } from "./actors.service.js";

const EMAIL_MAX = 254;
// Deliberately loose: one @, something on each side, a dot in the domain. Whether a mailbox exists
// is for the sign-in email to find out, not a regex.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

const ACTOR_SCHEMA: Schema = {
  type: "object",
  required: ["type", "name"],
  properties: {
    type: { type: "string", enum: [...ACTOR_TYPES] },
    name: { type: "string", maxLength: 255 },
    email: { type: "string", format: "email", maxLength: EMAIL_MAX, description: "required for users and admins, not allowed for service accounts and API clients; unique per account in any case" },
  },
  additionalProperties: false,
};

function readEmail(input: BodyReader): string | null | undefined {
  if (input.raw("email") === null) return null;
  const email = input.text("email", { required: false, max: EMAIL_MAX });
  if (email !== undefined && !EMAIL.test(email)) return input.fail("email", "email.invalid", "email must be an address such as ada@example.com");
  return email;
}

function readNewActor(body: unknown): { type: ActorType; name: string; email: string | null } {
  const input = new BodyReader(body, ["type", "name", "email"], "an actor");
  const type = input.oneOf("type", ACTOR_TYPES, true);
  const name = input.text("name", { required: true });
  const email = readEmail(input);
  if (type !== undefined && PEOPLE.includes(type) && (email === undefined || email === null) && !input.errors.some((e) => e.field === "email")) {
    input.fail("email", "email.required", `a ${type} needs an email`);
  }
  if (type !== undefined && !PEOPLE.includes(type) && input.has("email") && input.raw("email") !== null) {
    input.fail("email", "email.not_allowed", `a ${type.replace("_", " ")} has no email`);
  }
  input.done();
  return { type: type!, name: name!, email: email ?? null };
}

function readActorPatch(body: unknown): ActorPatch {
  const input = new BodyReader(body, ["type", "name", "email"], "an actor");
  const type = input.oneOf("type", ACTOR_TYPES, false);
  const name = input.text("name", { required: false });
  const email = readEmail(input);
  input.done();
  return { ...(type !== undefined ? { type } : {}), ...(name !== undefined ? { name } : {}), ...(email !== undefined ? { email } : {}) };
}

@ApiTags("actors")
@ApiBearerAuth()
@Controller("api/actors")
export class ActorsController {
  constructor(@Inject(ActorsService) private readonly actors: ActorsService) {}

  @Get()
  @ApiQuery(PAGE_QUERY_DOCS[0]!)
  @ApiQuery(PAGE_QUERY_DOCS[1]!)
  @ApiQuery({ name: "type", required: false, enum: [...ACTOR_TYPES], description: "only actors of this type" })
  @ApiOkResponse({ description: "One page of the account's actors, in id order." })
  async list(@Scope() scope: AccountScope, @Query() query: Record<string, unknown>): Promise<ListBody<ActorView>> {
    const { type, ...page } = query;
    if (type !== undefined && !(ACTOR_TYPES as readonly unknown[]).includes(type)) {
      throw Problem.invalid([{ field: "type", code: "type.invalid", message: `type must be one of ${ACTOR_TYPES.join(", ")}` }]);
    }
    const where = type === undefined ? {} : { type: type as ActorType };
    return listBody(await scope.repository(ActorEntity).page({ where, ...pageQuery(page) }), actorView);
  }

  @Post()
  @ApiBody({ schema: ACTOR_SCHEMA })
  @ApiCreatedResponse({ description: "The new actor." })
  @ApiConflictResponse({ description: "`email_taken`: another actor of the account has this email." })
  async create(@Scope() scope: AccountScope, @Body() body: unknown): Promise<ActorView> {
    return actorView(await this.actors.create(scope, readNewActor(body)));
  }

  @Get(":id")
  async get(@Scope() scope: AccountScope, @Param("id") id: string): Promise<ActorView> {
    return actorView(await this.actors.existing(scope, idParam(id, "the actor")));
  }

  @Patch(":id")
  @ApiBody({ schema: { ...ACTOR_SCHEMA, required: [] } })
  @ApiOkResponse({ description: "The changed actor. A type changes only between user and admin." })
  @ApiConflictResponse({ description: "`email_taken`; `last_admin`: demoting the account's last enabled admin." })
  async update(@Scope() scope: AccountScope, @Param("id") id: string, @Body() body: unknown): Promise<ActorView> {
    const actorId = idParam(id, "the actor");
    return actorView(await this.actors.update(scope, actorId, readActorPatch(body)));
  }

  @Delete(":id")
  @HttpCode(204)
  @ApiNoContentResponse({ description: "The actor is gone, with its tokens, devices and memberships." })
  @ApiConflictResponse({ description: "`cannot_delete_self`; `last_admin`: the account's last enabled admin." })
  async remove(@Scope() scope: AccountScope, @Caller() caller: Principal, @Param("id") id: string): Promise<void> {
    await this.actors.remove(scope, caller.actorId, idParam(id, "the actor"));
  }

  @Post(":id/disable")
  @HttpCode(200)
  @ApiOkResponse({ description: "The disabled actor; its tokens stop working at once." })
  @ApiConflictResponse({ description: "`cannot_disable_self`; `last_admin`: the account's last enabled admin." })
  async disable(@Scope() scope: AccountScope, @Caller() caller: Principal, @Param("id") id: string): Promise<ActorView> {
    return actorView(await this.actors.disable(scope, caller.actorId, idParam(id, "the actor")));
  }

  @Post(":id/enable")
  @HttpCode(200)
  @ApiOkResponse({ description: "The enabled actor; its tokens work again." })
  async enable(@Scope() scope: AccountScope, @Param("id") id: string): Promise<ActorView> {
    return actorView(await this.actors.enable(scope, idParam(id, "the actor")));
  }
}
