// The account view, differentially: a seeded random sequence of inserts, updates and deletes goes to
// the database through AccountScope; each change-log row it writes is fed to `apply`; after every step
// the view must equal AccountView.load of the database (cascaded deletes included), and every
// resource whose grants changed must be in the step's impact. On PGlite and on PostgreSQL.

import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { DataSource } from "typeorm";
import { missingPostgres, startPostgres } from "../../../test/support/postgres.js";
import { rng, reportSeedOnFailure, type Rng } from "../../../test/support/prng.js";
import { AccountScope } from "../database/account-scope.js";
import { openDatabase } from "../database/data-source.js";
import {
  AccountEntity,
  ActorEntity,
  ChangeLogEntity,
  GroupEntity,
  MembershipEntity,
  PolicyEntity,
  ResourceEntity,
  ResourceSiteEntity,
  SiteEntity,
  type ActorType,
} from "../database/entities.js";
import { AccountView } from "./account-view.js";
import { evaluate } from "./evaluator.js";

beforeEach(reportSeedOnFailure);

const pgMissing = missingPostgres();
if (pgMissing !== undefined && (process.env.CI === "true" || process.env.CI === "1")) throw new Error(`PostgreSQL tests cannot run under CI: ${pgMissing}`);
if (pgMissing !== undefined) console.warn(`skipping the PostgreSQL half of the account view tests: ${pgMissing}`);

const KINDS = [
  { name: "PGlite", missing: undefined as string | undefined, open: async () => ({ db: await openDatabase({ memory: true }), stop: async () => {} }) },
  {
    name: "PostgreSQL",
    missing: pgMissing,
    open: async () => {
      const server = await startPostgres();
      return { db: await openDatabase({ url: server.url }), stop: server.stop };
    },
  },
];

const STEPS = 160;

const CONDITIONS: unknown[][] = [
  [],
  [{ property: "client_verified", operator: "is", values: ["true"] }],
  [{ property: "remote_ip", operator: "is_in_cidr", values: ["10.0.0.0/8", "2001:db8::/32"] }],
  [{ property: "current_utc_datetime", operator: "is_in_day_of_week_time_ranges", values: ["M/09:00-17:00/Europe/Berlin", "T/true/UTC"] }],
  [{ property: "remote_ip_location_region", operator: "is_not_in", values: ["US"] }],
  [{ property: "remote_ip", operator: "is_in_cidr", values: ["bogus"] }], // stored invalid: never allows
];

describe.each(KINDS)("account view on $name", ({ missing, open }) => {
  let db: DataSource;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    if (missing !== undefined) return;
    ({ db, stop } = await open());
  }, 60_000);
  afterAll(async () => {
    if (missing !== undefined) return;
    await db?.destroy();
    await stop?.();
  });

  it.skipIf(missing !== undefined)(
    "apply of each change-log row keeps the view equal to a fresh load, step after step",
    async () => {
      const r = rng("account view differential");
      const accountId = randomUUID();
      await db.getRepository(AccountEntity).insert({ id: accountId, slug: `view-${accountId.slice(0, 8)}`, name: "View" });
      // A second account's changes must not leak into this one's view.
      const otherId = randomUUID();
      await db.getRepository(AccountEntity).insert({ id: otherId, slug: `other-${otherId.slice(0, 8)}`, name: "Other" });
      const scope = new AccountScope(db, accountId, null);
      const other = new AccountScope(db, otherId, null);
      const seen = new Set<string>();
      const view = AccountView.empty(accountId);

      const feed = async (): Promise<ReturnType<AccountView["apply"]>[]> => {
        const rows = await scope.repository(ChangeLogEntity).list();
        const fresh = rows.filter((row) => !seen.has(row.id));
        const impacts = [];
        for (const row of fresh) {
          seen.add(row.id);
          impacts.push(view.apply(row));
        }
        return impacts;
      };

      await scope.repository(GroupEntity).insert({ name: "Everyone", kind: "everyone" });
      await feed();
      const world = new World(r, scope);
      await world.seed();
      await feed();
      expect(view.snapshot()).toEqual((await AccountView.load(scope)).snapshot());

      const counts = new Map<string, number>();
      const kinds = ["actor+", "actor~", "actor-", "group+", "group-", "member+", "member-", "site+", "site-", "resource+", "resource~", "resource-", "link+", "link-", "policy+", "policy~", "policy-"];
      // STEPS steps, then more (up to four times as many) until every kind of change has run: a rare
      // kind (site- is about 2 % of steps) can miss a run of STEPS by chance.
      const unseen = (): boolean => kinds.some((op) => !counts.has(op));
      for (let step = 0; step < STEPS || (unseen() && step < 4 * STEPS); step++) {
        const grantsBefore = grantKeys(view);
        const op = await world.step();
        counts.set(op, (counts.get(op) ?? 0) + 1);
        if (r.bool(0.2)) await other.repository(GroupEntity).insert({ name: `noise ${step}` });
        const impacts = await feed();
        const where = r.where(`step ${step}: ${op}`);
        const loaded = await AccountView.load(scope);
        expect(view.snapshot(), where).toEqual(loaded.snapshot());
        // Every resource whose grants or policies changed is in the impact: revocation pushes find it.
        const grantsAfter = grantKeys(view);
        const touched = new Set(impacts.flatMap((i) => [...i.resourceIds]));
        for (const id of new Set([...grantsBefore.keys(), ...grantsAfter.keys()])) {
          if (grantsBefore.get(id) !== grantsAfter.get(id)) expect(touched.has(id), `${where}: resource ${id} changed but is not in the impact`).toBe(true);
        }
      }
      // The sequence exercised every kind of change, cascades included.
      for (const op of kinds) {
        expect(counts.get(op) ?? 0, `${op} ran`).toBeGreaterThan(0);
      }

      // The view answers the evaluator's question the way the database's state implies.
      for (const actorId of world.actors) {
        const groupIds = view.groupsOf(actorId);
        for (const resourceId of world.resources) {
          const decision = evaluate(view.policiesFor(resourceId), { actorId, groupIds, providerId: null, clientIp: "10.1.1.1", region: "DE", clientVerified: true, tokenExpiresAt: null }, resourceId, new Date("2025-06-03T10:00:00Z"));
          if (decision.allowed) {
            expect(view.resourcesVisibleTo(actorId).map((x) => x.id)).toContain(resourceId);
            expect(view.actorsGrantedResource(resourceId).has(actorId)).toBe(true);
          }
        }
      }
    },
    120_000,
  );
});

function grantKeys(view: AccountView): Map<string, string> {
  const snapshot = view.snapshot() as { resources: { id: string; granted: string[]; policies: string[] }[] };
  return new Map(snapshot.resources.map((r) => [r.id, JSON.stringify([r.granted, r.policies, r])]));
}

/** The database's current objects, as the test knows them, and random changes to them. */
class World {
  actors: string[] = [];
  groups: string[] = [];
  sites: string[] = [];
  resources: string[] = [];
  memberships: [string, string][] = [];
  links: [string, string][] = [];
  policies: { id: string; groupId: string; resourceId: string }[] = [];
  private names = 0;

  constructor(
    private readonly r: Rng,
    private readonly scope: AccountScope,
  ) {}

  async seed(): Promise<void> {
    for (let i = 0; i < 4; i++) await this.addActor();
    for (let i = 0; i < 3; i++) await this.addGroup();
    for (let i = 0; i < 2; i++) await this.addSite();
    for (let i = 0; i < 4; i++) await this.addResource();
    for (let i = 0; i < 4; i++) await this.addPolicy();
  }

  private name(prefix: string): string {
    return `${prefix} ${++this.names}`;
  }

  private async allGroups(): Promise<{ id: string; kind: string }[]> {
    return this.scope.repository(GroupEntity).list();
  }

  async addActor(): Promise<void> {
    const type = this.r.pick<ActorType>(["user", "admin", "service_account", "api_client"]);
    const actor = await this.scope.repository(ActorEntity).insert({ type, name: this.name("actor"), email: null, passwordHash: null, disabledAt: null });
    this.actors.push(actor.id);
  }

  async addGroup(): Promise<void> {
    const group = await this.scope.repository(GroupEntity).insert({ name: this.name("group") });
    this.groups.push(group.id);
  }

  async addSite(): Promise<void> {
    const site = await this.scope.repository(SiteEntity).insert({ name: this.name("site") });
    this.sites.push(site.id);
  }

  async addResource(): Promise<void> {
    const repo = this.scope.repository(ResourceEntity);
    const hasInternet = (await repo.count({ type: "internet" })) > 0;
    const type = this.r.pick(hasInternet ? (["dns", "ip", "cidr"] as const) : (["dns", "ip", "cidr", "internet"] as const));
    const n = this.r.int(1, 250);
    const address = type === "dns" ? `host${n}.example.com` : type === "ip" ? `10.0.0.${n}` : type === "cidr" ? `10.${n}.0.0/16` : null;
    const filters = this.r.bool() ? [] : [{ protocol: "tcp", ports: [{ from: 443, to: 443 }] }];
    const resource = await repo.insert({ type, name: this.name("resource"), address, addressDescription: this.r.bool() ? "desc" : null, filters });
    this.resources.push(resource.id);
  }

  async addPolicy(): Promise<boolean> {
    const groups = await this.allGroups();
    if (groups.length === 0 || this.resources.length === 0) return false;
    const groupId = this.r.pick(groups).id;
    const resourceId = this.r.pick(this.resources);
    if (this.policies.some((p) => p.groupId === groupId && p.resourceId === resourceId)) return false;
    const policy = await this.scope.repository(PolicyEntity).insert({
      groupId,
      resourceId,
      description: "",
      conditions: this.r.pick(CONDITIONS),
      disabledAt: this.r.bool(0.2) ? new Date() : null,
    });
    this.policies.push({ id: policy.id, groupId, resourceId });
    return true;
  }

  private take<T>(list: T[]): T | undefined {
    if (list.length === 0) return undefined;
    const i = this.r.int(0, list.length - 1);
    return list.splice(i, 1)[0];
  }

  /** One random change; returns its name. */
  async step(): Promise<string> {
    for (;;) {
      const op = this.r.int(0, 18);
      switch (op) {
        case 0:
          await this.addActor();
          return "actor+";
        case 1: {
          if (this.actors.length === 0) break;
          const id = this.r.pick(this.actors);
          const patch = this.r.bool(0.6)
            ? { disabledAt: this.r.bool() ? new Date() : null }
            : { type: this.r.pick<ActorType>(["user", "admin", "service_account", "api_client"]) };
          await this.scope.repository(ActorEntity).update(id, patch);
          return "actor~";
        }
        case 2: {
          const id = this.take(this.actors);
          if (id === undefined) break;
          await this.scope.repository(ActorEntity).delete(id);
          this.memberships = this.memberships.filter(([, a]) => a !== id);
          return "actor-";
        }
        case 3:
          await this.addGroup();
          return "group+";
        case 4: {
          // Occasionally the Everyone group itself goes (the API forbids it; the view must still cope), and comes back.
          const groups = await this.allGroups();
          const everyone = groups.find((g) => g.kind === "everyone");
          if (everyone === undefined) {
            await this.scope.repository(GroupEntity).insert({ name: this.name("Everyone"), kind: "everyone" });
            return "group+";
          }
          const victim = this.r.bool(0.15) ? everyone.id : this.take(this.groups);
          if (victim === undefined) break;
          this.groups = this.groups.filter((g) => g !== victim);
          await this.scope.repository(GroupEntity).delete(victim);
          this.memberships = this.memberships.filter(([g]) => g !== victim);
          this.policies = this.policies.filter((p) => p.groupId !== victim);
          return "group-";
        }
        case 5: {
          if (this.groups.length === 0 || this.actors.length === 0) break;
          const groupId = this.r.pick(this.groups);
          const actorId = this.r.pick(this.actors);
          if (this.memberships.some(([g, a]) => g === groupId && a === actorId)) break;
          await this.scope.links(MembershipEntity).add({ groupId, actorId });
          this.memberships.push([groupId, actorId]);
          return "member+";
        }
        case 6: {
          const pair = this.take(this.memberships);
          if (pair === undefined) break;
          await this.scope.links(MembershipEntity).remove({ groupId: pair[0], actorId: pair[1] });
          return "member-";
        }
        case 7:
          await this.addSite();
          return "site+";
        case 8: {
          if (!this.r.bool(0.4)) break;
          const id = this.take(this.sites);
          if (id === undefined) break;
          await this.scope.repository(SiteEntity).delete(id);
          this.links = this.links.filter(([, s]) => s !== id);
          return "site-";
        }
        case 9:
          await this.addResource();
          return "resource+";
        case 10: {
          if (this.resources.length === 0) break;
          const id = this.r.pick(this.resources);
          const patch = this.r.bool() ? { name: this.name("renamed") } : { filters: this.r.bool() ? [] : [{ protocol: "udp", ports: [{ from: 53, to: 53 }] }], addressDescription: null };
          await this.scope.repository(ResourceEntity).update(id, patch);
          return "resource~";
        }
        case 11: {
          if (!this.r.bool(0.5)) break;
          const id = this.take(this.resources);
          if (id === undefined) break;
          await this.scope.repository(ResourceEntity).delete(id);
          this.links = this.links.filter(([res]) => res !== id);
          this.policies = this.policies.filter((p) => p.resourceId !== id);
          return "resource-";
        }
        case 12:
        case 13: {
          if (this.resources.length === 0 || this.sites.length === 0) break;
          const resourceId = this.r.pick(this.resources);
          const siteId = this.r.pick(this.sites);
          if (this.links.some(([res, s]) => res === resourceId && s === siteId)) break;
          await this.scope.links(ResourceSiteEntity).add({ resourceId, siteId });
          this.links.push([resourceId, siteId]);
          return "link+";
        }
        case 14: {
          const pair = this.take(this.links);
          if (pair === undefined) break;
          await this.scope.links(ResourceSiteEntity).remove({ resourceId: pair[0], siteId: pair[1] });
          return "link-";
        }
        case 15:
        case 16:
          if (await this.addPolicy()) return "policy+";
          break;
        case 17: {
          if (this.policies.length === 0) break;
          const { id } = this.r.pick(this.policies);
          const patch = this.r.bool() ? { disabledAt: this.r.bool() ? new Date() : null } : { conditions: this.r.pick(CONDITIONS) };
          await this.scope.repository(PolicyEntity).update(id, patch);
          return "policy~";
        }
        case 18: {
          const policy = this.take(this.policies);
          if (policy === undefined) break;
          await this.scope.repository(PolicyEntity).delete(policy.id);
          return "policy-";
        }
      }
    }
  }
}
