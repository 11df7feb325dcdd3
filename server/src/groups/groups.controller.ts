// /api/groups: groups of actors, which policies grant resources to, and their memberships. The
// Everyone group comes with the account and its membership is computed (every user and admin), not
// stored, so it can be neither renamed, deleted, nor given or denied members by hand.

import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Put, Query } from "@nestjs/common";
import { ApiBearerAuth, ApiBody, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiQuery, ApiTags } from "@nestjs/swagger";
import { In } from "typeorm";
import { Scope } from "../auth/access.js";
import type { AccountScope } from "../database/account-scope.js";
import { ActorEntity, GroupEntity, MembershipEntity, type Actor, type Group } from "../database/entities.js";
import { BodyReader, idParam, listBody, PAGE_QUERY_DOCS, pageQuery, type ListBody } from "../http/input.js";
import type { Schema } from "../http/openapi.js";
import { Problem } from "../http/problem.js";

export interface GroupView {
  id: string;
  name: string;
  kind: Group["kind"];
  created_at: string;
}

export interface MemberView {
  actor_id: string;
  name: string;
  type: Actor["type"];
}

export const groupView = (g: Group): GroupView => ({ id: g.id, name: g.name, kind: g.kind, created_at: g.createdAt.toISOString() });

const memberView = (a: Actor): MemberView => ({ actor_id: a.id, name: a.name, type: a.type });

/** Who the Everyone group holds: people, never service accounts or API clients (accounts.service.ts). */
const EVERYONE_MEMBER_TYPES: Actor["type"][] = ["user", "admin"];

const GROUP_SCHEMA: Schema = { type: "object", required: ["name"], properties: { name: { type: "string", maxLength: 255 } }, additionalProperties: false };

function readGroup(body: unknown, required: boolean): { name?: string } {
  const input = new BodyReader(body, ["name"], "a group");
  const name = input.text("name", { required });
  input.done();
  return name === undefined ? {} : { name };
}

async function existingGroup(scope: AccountScope, id: string): Promise<Group> {
  const group = await scope.repository(GroupEntity).get(idParam(id, "the group"));
  if (group === null) throw Problem.notFound("the group");
  return group;
}

function refuseEveryone(group: Group, change: "rename" | "delete" | "members"): void {
  if (group.kind !== "everyone") return;
  if (change === "members") {
    throw Problem.forbidden("the Everyone group holds every user and admin of the account by definition; its members cannot be added or removed", "group.everyone_implicit");
  }
  throw Problem.forbidden(`the Everyone group comes with the account and cannot be ${change === "rename" ? "renamed" : "deleted"}`, "group.everyone_fixed");
}

@ApiTags("groups")
@ApiBearerAuth()
@Controller("api/groups")
export class GroupsController {
  @Get()
  @ApiQuery(PAGE_QUERY_DOCS[0]!)
  @ApiQuery(PAGE_QUERY_DOCS[1]!)
  @ApiOkResponse({ description: "One page of the account's groups, in id order." })
  async list(@Scope() scope: AccountScope, @Query() query: Record<string, unknown>): Promise<ListBody<GroupView>> {
    return listBody(await scope.repository(GroupEntity).page(pageQuery(query)), groupView);
  }

  @Post()
  @ApiBody({ schema: GROUP_SCHEMA })
  @ApiCreatedResponse({ description: "The new group, without members." })
  async create(@Scope() scope: AccountScope, @Body() body: unknown): Promise<GroupView> {
    const { name } = readGroup(body, true);
    return groupView(await scope.repository(GroupEntity).insert({ name: name!, kind: "static" }));
  }

  @Get(":id")
  async get(@Scope() scope: AccountScope, @Param("id") id: string): Promise<GroupView> {
    return groupView(await existingGroup(scope, id));
  }

  @Patch(":id")
  @ApiBody({ schema: { ...GROUP_SCHEMA, required: [] } })
  async update(@Scope() scope: AccountScope, @Param("id") id: string, @Body() body: unknown): Promise<GroupView> {
    const patch = readGroup(body, false);
    const group = await existingGroup(scope, id);
    if (patch.name !== undefined && patch.name !== group.name) refuseEveryone(group, "rename");
    const updated = await scope.repository(GroupEntity).update(group.id, patch);
    if (updated === null) throw Problem.notFound("the group");
    return groupView(updated);
  }

  @Delete(":id")
  @HttpCode(204)
  @ApiNoContentResponse({ description: "The group is gone, with its memberships and policies." })
  async remove(@Scope() scope: AccountScope, @Param("id") id: string): Promise<void> {
    const group = await existingGroup(scope, id);
    refuseEveryone(group, "delete");
    if (!(await scope.repository(GroupEntity).delete(group.id))) throw Problem.notFound("the group");
  }

  @Get(":id/members")
  @ApiQuery(PAGE_QUERY_DOCS[0]!)
  @ApiQuery(PAGE_QUERY_DOCS[1]!)
  @ApiOkResponse({ description: "One page of the group's members, in actor id order; for Everyone, every user and admin." })
  async listMembers(@Scope() scope: AccountScope, @Param("id") id: string, @Query() query: Record<string, unknown>): Promise<ListBody<MemberView>> {
    const group = await existingGroup(scope, id);
    const page = pageQuery(query);
    const actors = scope.repository(ActorEntity);
    if (group.kind === "everyone") return listBody(await actors.page({ where: { type: In(EVERYONE_MEMBER_TYPES) }, ...page }), memberView);
    const links = await scope.links(MembershipEntity).page({ where: { groupId: group.id }, by: "actorId", ...page });
    const ids = links.rows.map((m) => m.actorId);
    const byId = new Map((ids.length === 0 ? [] : await actors.list({ where: { id: In(ids) } })).map((a) => [a.id, a]));
    // A membership's actor is always there (the foreign key cascades), unless deleted between the two reads.
    const members = ids.map((actorId) => byId.get(actorId)).filter((a): a is Actor => a !== undefined);
    return listBody({ rows: members, next: links.next }, memberView);
  }

  @Put(":id/members/:actorId")
  @HttpCode(204)
  @ApiNoContentResponse({ description: "The actor is a member (again, or already: adding is idempotent)." })
  async addMember(@Scope() scope: AccountScope, @Param("id") id: string, @Param("actorId") actorId: string): Promise<void> {
    const group = await existingGroup(scope, id);
    refuseEveryone(group, "members");
    const actor = await scope.repository(ActorEntity).get(idParam(actorId, "the actor"));
    if (actor === null) throw Problem.notFound("the actor");
    const memberships = scope.links(MembershipEntity);
    const key = { groupId: group.id, actorId: actor.id };
    try {
      await memberships.add(key);
    } catch (error) {
      // A concurrent PUT of the same membership won the insert: the actor is a member, as asked.
      if ((await memberships.list(key)).length === 0) throw error;
    }
  }

  @Delete(":id/members/:actorId")
  @HttpCode(204)
  @ApiNoContentResponse({ description: "The actor is no longer a member." })
  async removeMember(@Scope() scope: AccountScope, @Param("id") id: string, @Param("actorId") actorId: string): Promise<void> {
    const group = await existingGroup(scope, id);
    refuseEveryone(group, "members");
    const removed = await scope.links(MembershipEntity).remove({ groupId: group.id, actorId: idParam(actorId, "the membership") });
    if (removed === 0) throw Problem.notFound("the membership");
  }
}
