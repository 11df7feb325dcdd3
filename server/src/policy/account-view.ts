// One account's authorization state in memory: actors, groups (with the implicit Everyone),
// memberships, resources with their sites, and compiled policies, indexed for the questions the
// realtime channels ask. Built once from the database (load), then kept current from change-log
// entries one at a time (apply), never rebuilt in full.
//
// 1. load(scope): six scoped reads, each row through the same upsert apply uses, so the two paths
//    cannot disagree on what a row means.
// 2. apply(change): the change log's before/after are the entity rows as JSON (camelCase keys, dates
//    as ISO strings). Inserts and updates upsert `after`; deletes remove `before`'s key. A delete also
//    does what the database's ON DELETE CASCADE did without logging it: a group takes its memberships
//    and policies along, an actor its memberships, a resource its sites and policies, a site its
//    resource links.
// 3. Queries fail closed: an unknown or disabled actor is in no group and sees nothing.
//
// Everyone holds every user and admin (not service accounts or API clients), computed, never stored.

import type { AccountScope } from "../database/account-scope.js";
import { ActorEntity, GroupEntity, MembershipEntity, PolicyEntity, ResourceEntity, ResourceSiteEntity, type ActorType } from "../database/entities.js";
import { compilePolicy, type CompiledPolicy } from "./compiled-policy.js";

/** One change-log entry, as ChangeLogEntity rows hold it. */
export interface ViewChange {
  objectTable: string;
  action: "insert" | "update" | "delete";
  objectId: string;
  before: unknown;
  after: unknown;
}

export interface ViewActor {
  readonly id: string;
  readonly type: ActorType;
  readonly disabled: boolean;
}

export interface ViewGroup {
  readonly id: string;
  readonly name: string;
  readonly kind: "static" | "everyone";
}

export interface ViewResource {
  readonly id: string;
  readonly type: "dns" | "ip" | "cidr" | "internet";
  readonly name: string;
  readonly address: string | null;
  readonly addressDescription: string | null;
  readonly filters: readonly unknown[];
  readonly siteIds: ReadonlySet<string>;
}

/** What one apply touched: resources whose grants or data may have changed, actors whose groups or state may have. */
export interface ViewImpact {
  resourceIds: Set<string>;
  actorIds: Set<string>;
  /** Every actor in Everyone may be affected (the Everyone group itself changed). */
  everyone: boolean;
}

/** The tables the view follows; anything else in the change log is ignored. */
export const VIEW_TABLES: ReadonlySet<string> = new Set(["actors", "groups", "memberships", "resources", "resource_sites", "policies", "sites"]);

const EVERYONE_TYPES: ReadonlySet<ActorType> = new Set(["user", "admin"]);
const EMPTY: ReadonlySet<string> = new Set();
const NO_POLICIES: readonly CompiledPolicy[] = [];

type Row = Record<string, unknown>;

/** A compiled in-memory view of one account's actors, groups, resources and policies. */
export class AccountView {
  private readonly actors = new Map<string, ViewActor>();
  private readonly groups = new Map<string, ViewGroup>();
  private everyoneId: string | null = null;
  /** Stored (static) memberships, both ways. */
  private readonly groupsByActor = new Map<string, Set<string>>();
  private readonly actorsByGroup = new Map<string, Set<string>>();
  /**
   * Resources by id. An entry is replaced whenever its row changes (its sites are changed in place), so
   * what is derived from the row is kept on the entry: the merged view and the gateway's JSON.
   */
  private readonly resources = new Map<string, { row: Omit<ViewResource, "siteIds">; siteIds: Set<string>; merged?: ViewResource; gatewayJson?: string }>();
  private readonly policies = new Map<string, CompiledPolicy>();
  private readonly policiesByResource = new Map<string, Map<string, CompiledPolicy>>();
  private readonly policiesByGroup = new Map<string, Set<string>>();
  /** Caches: each actor's effective groups, each resource's policy list; dropped on the changes that touch them. */
  private readonly groupSets = new Map<string, ReadonlySet<string>>();
  private readonly policyLists = new Map<string, readonly CompiledPolicy[]>();

  private constructor(readonly accountId: string) {}

  /** An empty view (for tests and for accounts created after start). */
  static empty(accountId: string): AccountView {
    return new AccountView(accountId);
  }

  /** Builds the view of the scope's account from the database. */
  static async load(scope: AccountScope): Promise<AccountView> {
    const [actors, groups, resources, policies, memberships, resourceSites] = await Promise.all([
      scope.repository(ActorEntity).list(),
      scope.repository(GroupEntity).list(),
      scope.repository(ResourceEntity).list(),
      scope.repository(PolicyEntity).list(),
      scope.links(MembershipEntity).list(),
      scope.links(ResourceSiteEntity).list(),
    ]);
    const view = new AccountView(scope.accountId);
    const impact = newImpact();
    for (const row of actors) view.upsertActor(row as unknown as Row, impact);
    for (const row of groups) view.upsertGroup(row as unknown as Row, impact);
    for (const row of resources) view.upsertResource(row as unknown as Row, impact);
    for (const row of memberships) view.addMembership(row as unknown as Row, impact);
    for (const row of resourceSites) view.addResourceSite(row as unknown as Row, impact);
    for (const row of policies) view.upsertPolicy(row as unknown as Row, impact);
    return view;
  }

  /** Applies one change-log entry; entries of other tables are ignored. Never throws on a malformed entry. */
  apply(change: ViewChange): ViewImpact {
    const impact = newImpact();
    if (!VIEW_TABLES.has(change.objectTable)) return impact;
    const before = isRow(change.before) ? change.before : undefined;
    const after = isRow(change.after) ? change.after : undefined;
    const removing = change.action === "delete";
    const row = removing ? before : after;
    if (row === undefined) return impact;
    switch (change.objectTable) {
      case "actors":
        if (removing) this.removeActor(str(row.id), impact);
        else this.upsertActor(row, impact);
        break;
      case "groups":
        if (removing) this.removeGroup(str(row.id), impact);
        else this.upsertGroup(row, impact);
        break;
      case "memberships":
        if (removing) this.removeMembership(str(row.groupId), str(row.actorId), impact);
        else this.addMembership(row, impact);
        break;
      case "resources":
        if (removing) this.removeResource(str(row.id), impact);
        else this.upsertResource(row, impact);
        break;
      case "resource_sites":
        if (removing) this.removeResourceSite(str(row.resourceId), str(row.siteId), impact);
        else this.addResourceSite(row, impact);
        break;
      case "policies":
        if (removing) this.removePolicy(str(row.id), impact);
        else this.upsertPolicy(row, impact);
        break;
      case "sites":
        // The view keeps no site table; a deleted site is found among the resources' links.
        if (removing) this.removeSite(str(row.id), impact);
        break;
    }
    return impact;
  }

  // --- Queries ---

  actor(actorId: string): ViewActor | undefined {
    return this.actors.get(actorId);
  }

  resource(resourceId: string): ViewResource | undefined {
    const entry = this.resources.get(resourceId);
    if (entry === undefined) return undefined;
    return (entry.merged ??= { ...entry.row, siteIds: entry.siteIds });
  }

  /**
   * The resource as a gateway is told of it in create_authorization, as JSON text: {id, type, name,
   * address, filters}. Written once per version of the resource, not once per authorization.
   */
  gatewayResourceJson(resourceId: string): string | undefined {
    const entry = this.resources.get(resourceId);
    if (entry === undefined) return undefined;
    const { id, type, name, address, filters } = entry.row;
    return (entry.gatewayJson ??= JSON.stringify({ id, type, name, address, filters }));
  }

  /** The groups an enabled actor is in, Everyone included; empty for a disabled or unknown actor. */
  groupsOf(actorId: string): ReadonlySet<string> {
    const cached = this.groupSets.get(actorId);
    if (cached !== undefined) return cached;
    const actor = this.actors.get(actorId);
    if (actor === undefined || actor.disabled) return EMPTY;
    const set = new Set(this.groupsByActor.get(actorId) ?? []);
    if (this.everyoneId !== null && EVERYONE_TYPES.has(actor.type)) set.add(this.everyoneId);
    this.groupSets.set(actorId, set);
    return set;
  }

  /** Every policy for the resource, disabled ones included (evaluate skips them); the same array until it changes. */
  policiesFor(resourceId: string): readonly CompiledPolicy[] {
    const cached = this.policyLists.get(resourceId);
    if (cached !== undefined) return cached;
    const byId = this.policiesByResource.get(resourceId);
    if (byId === undefined) return NO_POLICIES;
    const list = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.policyLists.set(resourceId, list);
    return list;
  }

  /** The resources some enabled policy grants one of the actor's groups (conditions aside): the client's resource list. */
  resourcesVisibleTo(actorId: string): ViewResource[] {
    const ids = new Set<string>();
    for (const groupId of this.groupsOf(actorId)) {
      for (const policyId of this.policiesByGroup.get(groupId) ?? EMPTY) {
        const policy = this.policies.get(policyId);
        if (policy !== undefined && !policy.disabled && this.resources.has(policy.resourceId)) ids.add(policy.resourceId);
      }
    }
    return [...ids].sort().map((id) => this.resource(id)!);
  }

  /** The enabled actors some enabled policy grants the resource: who a change to it reaches. */
  actorsGrantedResource(resourceId: string): Set<string> {
    const out = new Set<string>();
    for (const policy of this.policiesByResource.get(resourceId)?.values() ?? []) {
      if (policy.disabled) continue;
      if (policy.groupId === this.everyoneId) {
        for (const actor of this.actors.values()) if (!actor.disabled && EVERYONE_TYPES.has(actor.type)) out.add(actor.id);
      }
      for (const actorId of this.actorsByGroup.get(policy.groupId) ?? EMPTY) {
        const actor = this.actors.get(actorId);
        if (actor !== undefined && !actor.disabled) out.add(actorId);
      }
    }
    return out;
  }

  /** Everything the view holds, in a canonical order: for tests and debugging. */
  snapshot(): unknown {
    const sorted = <T>(map: Map<string, T>): [string, T][] => [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      actors: sorted(this.actors).map(([, a]) => ({ ...a, groups: [...this.groupsOf(a.id)].sort() })),
      groups: sorted(this.groups).map(([, g]) => ({ ...g, members: [...(this.actorsByGroup.get(g.id) ?? [])].sort() })),
      everyoneId: this.everyoneId,
      resources: sorted(this.resources).map(([id]) => {
        const r = this.resource(id)!;
        return { ...r, siteIds: [...r.siteIds].sort(), policies: this.policiesFor(id).map((p) => p.id), granted: [...this.actorsGrantedResource(id)].sort() };
      }),
      policies: sorted(this.policies).map(([, p]) => ({ id: p.id, groupId: p.groupId, resourceId: p.resourceId, disabled: p.disabled, conditions: p.conditions, valid: p.checks !== null })),
      visible: sorted(this.actors).map(([id]) => [id, this.resourcesVisibleTo(id).map((r) => r.id)]),
      // Links whose ends are gone would be a bug in the cascade; the snapshot shows them if they appear.
      danglingMemberships: sorted(this.groupsByActor).filter(([actorId, groups]) => !this.actors.has(actorId) || [...groups].some((g) => !this.groups.has(g))).map(([a]) => a),
    };
  }

  // --- Upserts and removals ---

  private touchActor(actorId: string, impact: ViewImpact): void {
    this.groupSets.delete(actorId);
    impact.actorIds.add(actorId);
  }

  private touchResource(resourceId: string, impact: ViewImpact): void {
    this.policyLists.delete(resourceId);
    impact.resourceIds.add(resourceId);
  }

  private upsertActor(row: Row, impact: ViewImpact): void {
    const id = str(row.id);
    const type = str(row.type) as ActorType;
    // What the actor can reach follows its groups, before and after: every resource granted to them.
    for (const groupId of this.groupsOf(id)) this.touchGroupResources(groupId, impact);
    this.actors.set(id, { id, type, disabled: row.disabledAt !== null && row.disabledAt !== undefined });
    this.touchActor(id, impact);
    for (const groupId of this.groupsOf(id)) this.touchGroupResources(groupId, impact);
  }

  private removeActor(actorId: string, impact: ViewImpact): void {
    for (const groupId of this.groupsOf(actorId)) this.touchGroupResources(groupId, impact);
    this.actors.delete(actorId);
    for (const groupId of this.groupsByActor.get(actorId) ?? []) this.actorsByGroup.get(groupId)?.delete(actorId);
    this.groupsByActor.delete(actorId);
    this.touchActor(actorId, impact);
  }

  private touchGroupResources(groupId: string, impact: ViewImpact): void {
    for (const policyId of this.policiesByGroup.get(groupId) ?? EMPTY) {
      const policy = this.policies.get(policyId);
      if (policy !== undefined) impact.resourceIds.add(policy.resourceId);
    }
  }

  private upsertGroup(row: Row, impact: ViewImpact): void {
    const id = str(row.id);
    const kind = row.kind === "everyone" ? "everyone" : "static";
    const previous = this.groups.get(id);
    this.groups.set(id, { id, name: str(row.name), kind });
    if (kind === "everyone" && this.everyoneId !== id) {
      this.everyoneId = id;
      this.groupSets.clear();
      impact.everyone = true;
    } else if (kind === "static" && this.everyoneId === id) {
      this.everyoneId = null;
      this.groupSets.clear();
      impact.everyone = true;
    }
    if (previous?.kind !== kind) this.touchGroupResources(id, impact);
  }

  private removeGroup(groupId: string, impact: ViewImpact): void {
    this.touchGroupResources(groupId, impact);
    for (const policyId of [...(this.policiesByGroup.get(groupId) ?? [])]) this.removePolicy(policyId, impact);
    this.policiesByGroup.delete(groupId);
    for (const actorId of [...(this.actorsByGroup.get(groupId) ?? [])]) this.removeMembership(groupId, actorId, impact);
    this.actorsByGroup.delete(groupId);
    this.groups.delete(groupId);
    if (this.everyoneId === groupId) {
      this.everyoneId = null;
      this.groupSets.clear();
      impact.everyone = true;
    }
  }

  private addMembership(row: Row, impact: ViewImpact): void {
    const groupId = str(row.groupId);
    const actorId = str(row.actorId);
    setOf(this.groupsByActor, actorId).add(groupId);
    setOf(this.actorsByGroup, groupId).add(actorId);
    this.touchActor(actorId, impact);
    this.touchGroupResources(groupId, impact);
  }

  private removeMembership(groupId: string, actorId: string, impact: ViewImpact): void {
    const groups = this.groupsByActor.get(actorId);
    groups?.delete(groupId);
    if (groups?.size === 0) this.groupsByActor.delete(actorId);
    const actors = this.actorsByGroup.get(groupId);
    actors?.delete(actorId);
    if (actors?.size === 0) this.actorsByGroup.delete(groupId);
    this.touchActor(actorId, impact);
    this.touchGroupResources(groupId, impact);
  }

  private upsertResource(row: Row, impact: ViewImpact): void {
    const id = str(row.id);
    const existing = this.resources.get(id);
    const type = str(row.type) as ViewResource["type"];
    const resource = {
      id,
      type,
      name: str(row.name),
      address: typeof row.address === "string" ? row.address : null,
      addressDescription: typeof row.addressDescription === "string" ? row.addressDescription : null,
      filters: Array.isArray(row.filters) ? (row.filters as unknown[]) : [],
    };
    this.resources.set(id, { row: resource, siteIds: existing?.siteIds ?? new Set() });
    this.touchResource(id, impact);
  }

  private removeResource(resourceId: string, impact: ViewImpact): void {
    for (const policyId of [...(this.policiesByResource.get(resourceId)?.keys() ?? [])]) this.removePolicy(policyId, impact);
    this.policiesByResource.delete(resourceId);
    this.resources.delete(resourceId);
    this.touchResource(resourceId, impact);
  }

  private addResourceSite(row: Row, impact: ViewImpact): void {
    const entry = this.resources.get(str(row.resourceId));
    if (entry === undefined) return;
    entry.siteIds.add(str(row.siteId));
    this.touchResource(entry.row.id, impact);
  }

  private removeResourceSite(resourceId: string, siteId: string, impact: ViewImpact): void {
    this.resources.get(resourceId)?.siteIds.delete(siteId);
    this.touchResource(resourceId, impact);
  }

  private removeSite(siteId: string, impact: ViewImpact): void {
    for (const [resourceId, entry] of this.resources) if (entry.siteIds.delete(siteId)) this.touchResource(resourceId, impact);
  }

  private upsertPolicy(row: Row, impact: ViewImpact): void {
    const id = str(row.id);
    const previous = this.policies.get(id);
    if (previous !== undefined) this.removePolicy(id, impact);
    const policy = compilePolicy({
      id,
      groupId: str(row.groupId),
      resourceId: str(row.resourceId),
      disabled: row.disabledAt !== null && row.disabledAt !== undefined,
      conditions: row.conditions,
    });
    this.policies.set(id, policy);
    let byId = this.policiesByResource.get(policy.resourceId);
    if (byId === undefined) this.policiesByResource.set(policy.resourceId, (byId = new Map()));
    byId.set(id, policy);
    setOf(this.policiesByGroup, policy.groupId).add(id);
    this.touchResource(policy.resourceId, impact);
  }

  private removePolicy(policyId: string, impact: ViewImpact): void {
    const policy = this.policies.get(policyId);
    if (policy === undefined) return;
    this.policies.delete(policyId);
    const byId = this.policiesByResource.get(policy.resourceId);
    byId?.delete(policyId);
    if (byId?.size === 0) this.policiesByResource.delete(policy.resourceId);
    const inGroup = this.policiesByGroup.get(policy.groupId);
    inGroup?.delete(policyId);
    if (inGroup?.size === 0) this.policiesByGroup.delete(policy.groupId);
    this.touchResource(policy.resourceId, impact);
  }
}

function newImpact(): ViewImpact {
  return { resourceIds: new Set(), actorIds: new Set(), everyone: false };
}

function isRow(value: unknown): value is Row {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function str(value: unknown): string {
  return typeof value === "string" ? value : String(value);
}

function setOf(map: Map<string, Set<string>>, key: string): Set<string> {
  let set = map.get(key);
  if (set === undefined) map.set(key, (set = new Set()));
  return set;
}
