// The realtime tables as entity schemas (the migration 1764200000000-realtime creates them): which
// portal nodes are alive, which devices are connected to which node, and the authorization records.

import { EntitySchema } from "typeorm";
import type { TenantRow } from "../database/entities.js";

/** A portal process sharing the database; alive while its heartbeat is recent. */
export interface PortalNode {
  nodeId: string;
  startedAt: Date;
  heartbeatAt: Date;
}

export type PresenceKind = "client" | "gateway" | "relay";

/** One device (or relay) connected to one node; a device on two nodes has two rows. */
export interface PresenceRow {
  accountId: string;
  deviceId: string;
  nodeId: string;
  kind: PresenceKind;
  connectedAt: Date;
}

/** Who reached what through which gateway, until when, and why it ended if it was revoked. */
export interface Authorization extends TenantRow {
  clientDeviceId: string;
  gatewayDeviceId: string;
  resourceId: string;
  /** The policy that allowed it; no foreign key, so the record outlives the policy. */
  policyId: string;
  /** The client's actor; no foreign key, so the record outlives the actor. */
  actorId: string;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  revokeReason: string | null;
}

export const PortalNodeEntity = new EntitySchema<PortalNode>({
  name: "PortalNode",
  tableName: "portal_nodes",
  columns: {
    nodeId: { name: "node_id", type: "uuid", primary: true },
    startedAt: { name: "started_at", type: "timestamptz" },
    heartbeatAt: { name: "heartbeat_at", type: "timestamptz" },
  },
});

export const PresenceEntity = new EntitySchema<PresenceRow>({
  name: "Presence",
  tableName: "presence",
  columns: {
    accountId: { name: "account_id", type: "uuid", primary: true },
    deviceId: { name: "device_id", type: "uuid", primary: true },
    nodeId: { name: "node_id", type: "uuid", primary: true },
    kind: { type: "text" },
    connectedAt: { name: "connected_at", type: "timestamptz" },
  },
});

export const AuthorizationEntity = new EntitySchema<Authorization>({
  name: "Authorization",
  tableName: "authorizations",
  columns: {
    accountId: { name: "account_id", type: "uuid", primary: true },
    id: { type: "uuid", primary: true },
    clientDeviceId: { name: "client_device_id", type: "uuid" },
    gatewayDeviceId: { name: "gateway_device_id", type: "uuid" },
    resourceId: { name: "resource_id", type: "uuid" },
    policyId: { name: "policy_id", type: "uuid" },
    actorId: { name: "actor_id", type: "uuid" },
    createdAt: { name: "created_at", type: "timestamptz", createDate: true },
    expiresAt: { name: "expires_at", type: "timestamptz", nullable: true },
    revokedAt: { name: "revoked_at", type: "timestamptz", nullable: true },
    revokeReason: { name: "revoke_reason", type: "text", nullable: true },
  },
});

export const REALTIME_ENTITIES = [PortalNodeEntity, PresenceEntity, AuthorizationEntity];
