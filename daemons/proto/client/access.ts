// The client's side of authorization, per resource: ask the portal when traffic (or a DNS answer)
// first needs a resource, hold the packets meanwhile, and let them go, or refuse them, when the portal
// answers. One piece of ClientState.
//
// Driving contract: call an input (packetFor, resolved, authorizationCreated, authorizationFailed,
// resourceDeleted, handleTimeout) with monotonic `now` in ms, then drain pollEvent() until it returns
// undefined, then arm a timer for pollTimeout(). Nothing here reads a clock: the portal's wall-clock
// expiries are turned into monotonic time with `wallClockAtZeroMs`, the Unix time at monotonic 0.
//
// 1. A packet for a resource: authorized and not expired → "send"; otherwise it is held (bounded per
//    resource and in all; beyond that the oldest held packet of that resource is dropped) and, unless
//    a request is out already, a `request` event asks the portal (request_authorization).
// 2. A DNS answer for a resource asks the same way, holding nothing: by the time the application
//    sends, the authorization is usually there.
// 3. authorization_created: the authorization stands until its expiry; `authorized` tells the
//    ClientState to connect to the gateway, and `release` hands back the held packets in order.
// 4. authorization_creation_failed, or no answer within REQUEST_TIMEOUT_MS: `refused` hands back the
//    held packets, each to be answered with ICMP administratively prohibited. The next packet asks
//    again, unless `refusalHoldoffMs` is set: until it has passed, packets are refused at once
//    without asking, so an application retrying a denied connection does not flood the portal.
// 5. resource_deleted, the expiry, or authorization_creation_failed about an authorization held (the
//    portal's word that its gateway went offline): the authorization is gone at once (`revoked`);
//    the next packet asks again.

import type { ClientAuthorizationCreated, ClientAuthorizationCreationFailed } from "../portal/schema.js";

/** Longer than the portal's own 15 s: the portal answers "timeout" itself before this fires. */
export const REQUEST_TIMEOUT_MS = 20_000;
/** Packets held per resource while its authorization is asked for. */
export const MAX_HELD_PACKETS = 32;
/** Bytes held across all resources. */
export const MAX_HELD_BYTES = 256 * 1024;

export type AccessEvent =
  | { type: "request"; resourceId: string; connectedGatewayIds: string[] }
  | { type: "authorized"; authorization: ClientAuthorizationCreated }
  | { type: "release"; resourceId: string; gatewayId: string; packets: Uint8Array[] }
  | { type: "refused"; resourceId: string; reason: string; packets: Uint8Array[] }
  | { type: "revoked"; resourceId: string; gatewayId: string };

interface Pending {
  askedAt: number;
  held: Uint8Array[];
}

interface Granted {
  authorization: ClientAuthorizationCreated;
  expiresAt: number;
}

export interface AccessOptions {
  /** Unix time in ms at monotonic time 0. */
  wallClockAtZeroMs: number;
  maxHeldPackets?: number;
  maxHeldBytes?: number;
  requestTimeoutMs?: number;
  /** After a refusal, packets for the resource are refused without asking for this long; 0 unless told. */
  refusalHoldoffMs?: number;
}

/** Authorization per resource, as the client sees it. */
export class ResourceAccess {
  private readonly pending = new Map<string, Pending>();
  private readonly granted = new Map<string, Granted>();
  /** Resource id → until when packets are refused without asking. */
  private readonly refusedUntil = new Map<string, number>();
  private readonly events: AccessEvent[] = [];
  private heldBytes = 0;
  /** Packets dropped because the held queues were full. */
  droppedHeld = 0;

  constructor(private readonly options: AccessOptions) {}

  /** The gateway an authorized, unexpired resource goes through. */
  gatewayOf(now: number, resourceId: string): string | undefined {
    const granted = this.granted.get(resourceId);
    return granted !== undefined && granted.expiresAt > now ? granted.authorization.gateway_id : undefined;
  }

  /** The gateways the client holds authorizations through: the portal prefers them. */
  connectedGateways(now: number): string[] {
    const ids = new Set<string>();
    for (const granted of this.granted.values()) if (granted.expiresAt > now) ids.add(granted.authorization.gateway_id);
    return [...ids];
  }

  // --- 1, 2. Traffic and DNS answers ---

  /**
   * "dropped" only when other resources' held packets already fill MAX_HELD_BYTES; "refused" only
   * within the refusal holdoff (to be answered like a refused held packet).
   */
  packetFor(now: number, resourceId: string, packet: Uint8Array): "send" | "held" | "dropped" | "refused" {
    if (this.gatewayOf(now, resourceId) !== undefined) return "send";
    if (this.holdingOff(now, resourceId)) return "refused";
    const pending = this.ask(now, resourceId);
    const limit = this.options.maxHeldPackets ?? MAX_HELD_PACKETS;
    while (pending.held.length > 0 && (pending.held.length >= limit || this.heldBytes + packet.length > (this.options.maxHeldBytes ?? MAX_HELD_BYTES))) {
      this.heldBytes -= pending.held.shift()!.length;
      this.droppedHeld++;
    }
    if (this.heldBytes + packet.length > (this.options.maxHeldBytes ?? MAX_HELD_BYTES)) {
      this.droppedHeld++;
      return "dropped";
    }
    pending.held.push(packet);
    this.heldBytes += packet.length;
    return "held";
  }

  resolved(now: number, resourceId: string): void {
    if (this.gatewayOf(now, resourceId) === undefined && !this.holdingOff(now, resourceId)) this.ask(now, resourceId);
  }

  private holdingOff(now: number, resourceId: string): boolean {
    const until = this.refusedUntil.get(resourceId);
    if (until === undefined) return false;
    if (until > now) return true;
    this.refusedUntil.delete(resourceId);
    return false;
  }

  /** A refusal of the resource: held packets back to the caller, and the holdoff starts. */
  private refuse(now: number, resourceId: string, reason: string, packets: Uint8Array[]): void {
    const holdoff = this.options.refusalHoldoffMs ?? 0;
    if (holdoff > 0) this.refusedUntil.set(resourceId, now + holdoff);
    this.events.push({ type: "refused", resourceId, reason, packets });
  }

  private ask(now: number, resourceId: string): Pending {
    let pending = this.pending.get(resourceId);
    if (pending === undefined) {
      pending = { askedAt: now, held: [] };
      this.pending.set(resourceId, pending);
      this.events.push({ type: "request", resourceId, connectedGatewayIds: this.connectedGateways(now) });
    }
    return pending;
  }

  // --- 3, 4. The portal's answers ---

  authorizationCreated(now: number, authorization: ClientAuthorizationCreated): void {
    const expiresAt = Date.parse(authorization.expires_at) - this.options.wallClockAtZeroMs;
    const resourceId = authorization.resource_id;
    const pending = this.takePending(resourceId);
    if (!(expiresAt > now)) {
      // Already over (a clock far off, or a late answer): as good as refused.
      this.refuse(now, resourceId, "expired", pending?.held ?? []);
      return;
    }
    this.refusedUntil.delete(resourceId);
    const before = this.granted.get(resourceId);
    this.granted.set(resourceId, { authorization, expiresAt });
    if (before !== undefined && before.authorization.gateway_id !== authorization.gateway_id) {
      this.events.push({ type: "revoked", resourceId, gatewayId: before.authorization.gateway_id });
    }
    this.events.push({ type: "authorized", authorization });
    if (pending !== undefined && pending.held.length > 0) this.events.push({ type: "release", resourceId, gatewayId: authorization.gateway_id, packets: pending.held });
  }

  authorizationFailed(now: number, failure: ClientAuthorizationCreationFailed): void {
    const pending = this.takePending(failure.resource_id);
    if (pending !== undefined) {
      this.refuse(now, failure.resource_id, failure.reason, pending.held);
      return;
    }
    // About an authorization held, not asked for: it failed (its gateway went offline), and ends
    // without a refusal, so the next packet asks again and the portal can pick another gateway.
    const granted = this.granted.get(failure.resource_id);
    if (granted !== undefined) {
      this.granted.delete(failure.resource_id);
      this.events.push({ type: "revoked", resourceId: failure.resource_id, gatewayId: granted.authorization.gateway_id });
    }
  }

  private takePending(resourceId: string): Pending | undefined {
    const pending = this.pending.get(resourceId);
    if (pending === undefined) return undefined;
    this.pending.delete(resourceId);
    for (const packet of pending.held) this.heldBytes -= packet.length;
    return pending;
  }

  // --- 5. Revocation and expiry ---

  resourceDeleted(_now: number, resourceId: string): void {
    // A resource that comes back is asked for afresh.
    this.refusedUntil.delete(resourceId);
    const granted = this.granted.get(resourceId);
    if (granted !== undefined) {
      this.granted.delete(resourceId);
      this.events.push({ type: "revoked", resourceId, gatewayId: granted.authorization.gateway_id });
    }
    const pending = this.takePending(resourceId);
    if (pending !== undefined) this.events.push({ type: "refused", resourceId, reason: "not_found", packets: pending.held });
  }

  handleTimeout(now: number): void {
    for (const [resourceId, granted] of [...this.granted]) {
      if (granted.expiresAt > now) continue;
      this.granted.delete(resourceId);
      this.events.push({ type: "revoked", resourceId, gatewayId: granted.authorization.gateway_id });
    }
    const timeout = this.options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    for (const [resourceId, pending] of [...this.pending]) {
      if (pending.askedAt + timeout > now) continue;
      this.takePending(resourceId);
      this.refuse(now, resourceId, "timeout", pending.held);
    }
  }

  pollEvent(): AccessEvent | undefined {
    return this.events.shift();
  }

  pollTimeout(): number | undefined {
    let next: number | undefined;
    const timeout = this.options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    for (const granted of this.granted.values()) next = next === undefined ? granted.expiresAt : Math.min(next, granted.expiresAt);
    for (const pending of this.pending.values()) next = next === undefined ? pending.askedAt + timeout : Math.min(next, pending.askedAt + timeout);
    return next;
  }
}
