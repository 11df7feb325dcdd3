// Devices: the clients and gateways that hold a WireGuard key and tunnel addresses in an account.
//
// Registering (a device presents its token and public key):
// 1. The key is already registered in the account: the same owner gets the same device back, with
//    its name and last_seen_at brought up to date; another owner is refused.
// 2. Otherwise a random offset of the address plan is tried in an insert; the database's unique
//    indexes are the one arbiter of which addresses are free, across every portal node at once.
// 3. A unique violation sends us back to 1: it was either the same key registered concurrently (1
//    then finds it) or taken addresses (2 then tries another offset).

import { Problem } from "../http/problem.js";
import type { AccountScope } from "../database/account-scope.js";
import { DeviceEntity, type Device } from "../database/entities.js";
import { TunnelAddressPool } from "./tunnel-addresses.js";

/** Tries before giving up; with the pool at half its size used, all fail with odds of 2^-64. */
export const REGISTER_ATTEMPTS = 64;

/** Who registers: a client device of an actor, or a gateway of a site. */
export type DeviceOwner = { kind: "client"; actorId: string } | { kind: "gateway"; siteId: string };

export interface Registration {
  device: Device;
  /** False when the key was registered before and this is the same device again. */
  created: boolean;
}

export interface DeviceView {
  id: string;
  kind: Device["kind"];
  name: string;
  actor_id: string | null;
  site_id: string | null;
  public_key: string;
  ipv4: string;
  ipv6: string;
  verified_at: string | null;
  last_seen_at: string | null;
  version: string | null;
  created_at: string;
}

export const deviceView = (d: Device): DeviceView => ({
  id: d.id,
  kind: d.kind,
  name: d.name,
  actor_id: d.actorId,
  site_id: d.siteId,
  public_key: d.publicKey,
  ipv4: d.ipv4,
  ipv6: d.ipv6,
  verified_at: d.verifiedAt?.toISOString() ?? null,
  last_seen_at: d.lastSeenAt?.toISOString() ?? null,
  version: d.version ?? null,
  created_at: d.createdAt.toISOString(),
});

function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: unknown; driverError?: { code?: unknown } } | null;
  return (e?.driverError?.code ?? e?.code) === "23505";
}

const ownedBy = (device: Device, owner: DeviceOwner): boolean =>
  device.kind === owner.kind && (owner.kind === "client" ? device.actorId === owner.actorId : device.siteId === owner.siteId);

/** Registers devices and hands out their tunnel addresses. */
export class DevicesService {
  /** Address collisions met so far (for tests and metrics: each is one retried insert). */
  collisions = 0;

  constructor(private readonly pool: TunnelAddressPool = new TunnelAddressPool()) {}

  /** `values.version`, when given (a device connecting), is recorded; when absent (the REST API) the stored one is kept. */
  async register(scope: AccountScope, owner: DeviceOwner, values: { name: string; publicKey: string; version?: string | null }, now: Date = new Date()): Promise<Registration> {
    const devices = scope.repository(DeviceEntity);
    for (let attempt = 0; attempt < REGISTER_ATTEMPTS; attempt++) {
      const [known] = await devices.list({ where: { publicKey: values.publicKey }, take: 1 });
      if (known !== undefined) {
        if (!ownedBy(known, owner)) {
          throw Problem.conflict("another device of this account has this public key", [{ field: "public_key", code: "public_key.taken", message: "another device of this account has this public key" }], "public_key_taken");
        }
        const seen = await devices.update(known.id, { name: values.name, lastSeenAt: now, ...(values.version !== undefined ? { version: values.version } : {}) });
        if (seen !== null) return { device: seen, created: false };
        continue; // deleted meanwhile: register it anew
      }
      const addresses = this.pool.pick();
      try {
        const device = await devices.insert({
          kind: owner.kind,
          actorId: owner.kind === "client" ? owner.actorId : null,
          siteId: owner.kind === "gateway" ? owner.siteId : null,
          name: values.name,
          publicKey: values.publicKey,
          ...addresses,
          verifiedAt: null,
          lastSeenAt: now,
          version: values.version ?? null,
        });
        return { device, created: true };
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        this.collisions++;
      }
    }
    throw new Problem(503, "tunnel_addresses_exhausted", "Service unavailable", `no free tunnel addresses were found in ${REGISTER_ATTEMPTS} tries; the account's address space is nearly full`);
  }
}
