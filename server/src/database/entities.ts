// The tables as TypeORM entity schemas (no decorators: the shape is data, and the migrations in
// ./migrations are what creates the tables). Column names are snake_case in SQL, camelCase here.

import { EntitySchema } from "typeorm";
import { IDENTITY_ENTITIES } from "../auth/entities.js";
import { REALTIME_ENTITIES } from "../realtime/entities.js";

/** Every tenant row: the account it belongs to, and its id within that account. */
export interface TenantRow {
  accountId: string;
  id: string;
}

export interface Account {
  id: string;
  slug: string;
  name: string;
  /** DNS servers the account's clients forward other queries to; empty: the portal's default. */
  upstreamDns: string[];
  createdAt: Date;
}

export type ActorType = "user" | "admin" | "service_account" | "api_client";

export interface Actor extends TenantRow {
  type: ActorType;
  name: string;
  email: string | null;
  passwordHash: string | null;
  disabledAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface Group extends TenantRow {
  name: string;
  kind: "static" | "everyone";
  createdAt: Date;
}

export interface Site extends TenantRow {
  name: string;
  createdAt: Date;
}

export interface Device extends TenantRow {
  kind: "client" | "gateway";
  actorId: string | null;
  siteId: string | null;
  name: string;
  publicKey: string;
  ipv4: string;
  ipv6: string;
  verifiedAt: Date | null;
  lastSeenAt: Date | null;
  /** What the device said it runs when it last connected (major.minor.patch); null if it never said. */
  version?: string | null;
  createdAt: Date;
}

export interface Resource extends TenantRow {
  type: "dns" | "ip" | "cidr" | "internet";
  name: string;
  address: string | null;
  addressDescription: string | null;
  filters: unknown[];
  createdAt: Date;
  updatedAt: Date;
}

export interface Policy extends TenantRow {
  groupId: string;
  resourceId: string;
  description: string;
  conditions: unknown[];
  disabledAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface Membership {
  accountId: string;
  groupId: string;
  actorId: string;
  createdAt: Date;
}

export interface ResourceSite {
  accountId: string;
  resourceId: string;
  siteId: string;
}

export type TokenKind = "browser" | "client" | "gateway" | "relay" | "api";

export interface Token extends TenantRow {
  kind: TokenKind;
  actorId: string | null;
  siteId: string | null;
  name: string;
  secretHash: string;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  /** The auth provider the sign-in behind this token went through (OIDC); null otherwise. */
  providerId?: string | null;
  createdAt: Date;
}

export interface ChangeLogEntry extends TenantRow {
  actorId: string | null;
  action: "insert" | "update" | "delete";
  objectTable: string;
  objectId: string;
  before: unknown;
  after: unknown;
  at: Date;
}

const tenantKey = {
  accountId: { name: "account_id", type: "uuid", primary: true },
  id: { type: "uuid", primary: true },
} as const;

const createdAt = { createdAt: { name: "created_at", type: "timestamptz", createDate: true } } as const;
const updatedAt = { updatedAt: { name: "updated_at", type: "timestamptz", updateDate: true } } as const;

export const AccountEntity = new EntitySchema<Account>({
  name: "Account",
  tableName: "accounts",
  columns: { id: { type: "uuid", primary: true }, slug: { type: "text" }, name: { type: "text" }, upstreamDns: { name: "upstream_dns", type: "jsonb" }, ...createdAt },
});

export const ActorEntity = new EntitySchema<Actor>({
  name: "Actor",
  tableName: "actors",
  columns: {
    ...tenantKey,
    type: { type: "text" },
    name: { type: "text" },
    email: { type: "text", nullable: true },
    passwordHash: { name: "password_hash", type: "text", nullable: true },
    disabledAt: { name: "disabled_at", type: "timestamptz", nullable: true },
    ...createdAt,
    ...updatedAt,
  },
});

export const GroupEntity = new EntitySchema<Group>({
  name: "Group",
  tableName: "groups",
  columns: { ...tenantKey, name: { type: "text" }, kind: { type: "text" }, ...createdAt },
});

export const SiteEntity = new EntitySchema<Site>({
  name: "Site",
  tableName: "sites",
  columns: { ...tenantKey, name: { type: "text" }, ...createdAt },
});

export const DeviceEntity = new EntitySchema<Device>({
  name: "Device",
  tableName: "devices",
  columns: {
    ...tenantKey,
    kind: { type: "text" },
    actorId: { name: "actor_id", type: "uuid", nullable: true },
    siteId: { name: "site_id", type: "uuid", nullable: true },
    name: { type: "text" },
    publicKey: { name: "public_key", type: "text" },
    ipv4: { type: "inet" },
    ipv6: { type: "inet" },
    verifiedAt: { name: "verified_at", type: "timestamptz", nullable: true },
    lastSeenAt: { name: "last_seen_at", type: "timestamptz", nullable: true },
    version: { type: "text", nullable: true },
    ...createdAt,
  },
});

export const ResourceEntity = new EntitySchema<Resource>({
  name: "Resource",
  tableName: "resources",
  columns: {
    ...tenantKey,
    type: { type: "text" },
    name: { type: "text" },
    address: { type: "text", nullable: true },
    addressDescription: { name: "address_description", type: "text", nullable: true },
    filters: { type: "jsonb" },
    ...createdAt,
    ...updatedAt,
  },
});

export const PolicyEntity = new EntitySchema<Policy>({
  name: "Policy",
  tableName: "policies",
  columns: {
    ...tenantKey,
    groupId: { name: "group_id", type: "uuid" },
    resourceId: { name: "resource_id", type: "uuid" },
    description: { type: "text" },
    conditions: { type: "jsonb" },
    disabledAt: { name: "disabled_at", type: "timestamptz", nullable: true },
    ...createdAt,
    ...updatedAt,
  },
});

export const MembershipEntity = new EntitySchema<Membership>({
  name: "Membership",
  tableName: "memberships",
  columns: {
    accountId: { name: "account_id", type: "uuid", primary: true },
    groupId: { name: "group_id", type: "uuid", primary: true },
    actorId: { name: "actor_id", type: "uuid", primary: true },
    ...createdAt,
  },
});

export const ResourceSiteEntity = new EntitySchema<ResourceSite>({
  name: "ResourceSite",
  tableName: "resource_sites",
  columns: {
    accountId: { name: "account_id", type: "uuid", primary: true },
    resourceId: { name: "resource_id", type: "uuid", primary: true },
    siteId: { name: "site_id", type: "uuid", primary: true },
  },
});

export const TokenEntity = new EntitySchema<Token>({
  name: "Token",
  tableName: "tokens",
  columns: {
    ...tenantKey,
    kind: { type: "text" },
    actorId: { name: "actor_id", type: "uuid", nullable: true },
    siteId: { name: "site_id", type: "uuid", nullable: true },
    name: { type: "text" },
    secretHash: { name: "secret_hash", type: "text" },
    expiresAt: { name: "expires_at", type: "timestamptz", nullable: true },
    lastUsedAt: { name: "last_used_at", type: "timestamptz", nullable: true },
    providerId: { name: "provider_id", type: "uuid", nullable: true },
    ...createdAt,
  },
});

export const ChangeLogEntity = new EntitySchema<ChangeLogEntry>({
  name: "ChangeLogEntry",
  tableName: "change_log",
  columns: {
    ...tenantKey,
    actorId: { name: "actor_id", type: "uuid", nullable: true },
    action: { type: "text" },
    objectTable: { name: "object_table", type: "text" },
    objectId: { name: "object_id", type: "text" },
    before: { type: "jsonb", nullable: true },
    after: { type: "jsonb", nullable: true },
    at: { type: "timestamptz", createDate: true },
  },
});

export const ENTITIES = [
  AccountEntity,
  ActorEntity,
  GroupEntity,
  MembershipEntity,
  SiteEntity,
  DeviceEntity,
  ResourceEntity,
  ResourceSiteEntity,
  PolicyEntity,
  TokenEntity,
  ChangeLogEntity,
  ...IDENTITY_ENTITIES,
  ...REALTIME_ENTITIES,
];
