// A UDP NAT's translation table with the behaviours RFC 4787 names, for the simulated network: the
// Network routes datagrams through it, this file only decides what they become.
//
// 1. Outbound (inside → outside): find the mapping of the internal transport address for this
//    destination (§4.1: endpoint-independent mapping keys on the internal address alone,
//    address-dependent adds the remote IP, address-and-port-dependent the remote IP and port), or
//    create one on an external port (§4.2.1: the internal port itself when preserving and free,
//    else one drawn from the Rng); refresh its timer (§4.3 REQ-6, outbound refresh); note the remote
//    for filtering.
// 2. Inbound (outside → inside): the live mapping on the destination port, then filtering (§5:
//    endpoint-independent lets anyone in, address-dependent only IPs the mapping has sent to,
//    address-and-port-dependent only those IP:ports); optionally refresh on inbound (§4.3).
// 3. Expiry: a mapping idle for mappingTimeout is gone, looked at lazily on every use (the NAT is no
//    endpoint of its own, so it has no timer).
//
// Hairpinning (§6) is the Network's job, with hairpinning below saying whether it happens.

import type { Rng } from "../support/prng.js";
import { DEFAULT_MAPPING_TIMEOUT, SYSTEM_PORTS_MAX } from "./constants.js";
import { formatAddr, type Addr } from "./node.js";

/** RFC 4787 §4.1 mapping and §5 filtering behaviours. */
export type NatDependence = "endpoint-independent" | "address-dependent" | "address-and-port-dependent";

/** How a NAT behaves (RFC 4787 terms). */
export interface NatBehaviour {
  mapping: NatDependence;
  filtering: NatDependence;
  /** Idle time after which a mapping is gone, ms (DEFAULT_MAPPING_TIMEOUT unless told). */
  mappingTimeout: number;
  /** Whether inbound traffic refreshes a mapping too (§4.3 allows either; outbound always does). */
  inboundRefresh: boolean;
  /** Whether an inside host reaches another one through the public address (§6); off by default, as in many NATs. */
  hairpinning: boolean;
  /** Keep the internal port as the external one when free (§4.2.1); true for the cone presets. */
  portPreservation: boolean;
}

const BASE: Omit<NatBehaviour, "mapping" | "filtering" | "portPreservation"> = {
  mappingTimeout: DEFAULT_MAPPING_TIMEOUT,
  inboundRefresh: false,
  hairpinning: false,
};

/** Endpoint-independent mapping and filtering ("full cone"). */
export const fullCone: NatBehaviour = { ...BASE, mapping: "endpoint-independent", filtering: "endpoint-independent", portPreservation: true };
/** Endpoint-independent mapping, address-dependent filtering ("restricted cone"). */
export const restrictedCone: NatBehaviour = { ...BASE, mapping: "endpoint-independent", filtering: "address-dependent", portPreservation: true };
/** Endpoint-independent mapping, address-and-port-dependent filtering ("port-restricted cone", the common home router). */
export const portRestricted: NatBehaviour = { ...BASE, mapping: "endpoint-independent", filtering: "address-and-port-dependent", portPreservation: true };
/** Address-and-port-dependent mapping and filtering on random ports ("symmetric"): hole punching fails, a relay is needed. */
export const symmetric: NatBehaviour = { ...BASE, mapping: "address-and-port-dependent", filtering: "address-and-port-dependent", portPreservation: false };

/** One mapping, as the tests see it. */
export interface NatMapping {
  internal: Addr;
  external: Addr;
  /** For dependent mappings, the remote it is for (IP, or IP:port); "*" for endpoint-independent. */
  remote: string;
  /** The remotes (IPs or IP:ports, per the filtering) let in. */
  allowed: readonly string[];
  expiresAt: number;
}

interface Mapping {
  key: string;
  internal: Addr;
  externalPort: number;
  remote: string;
  /** Filtering keys of the remotes this mapping has sent to. */
  allowed: Set<string>;
  expiresAt: number;
}

/** What an inbound datagram becomes. */
export type InboundResult = { ok: true; internal: Addr } | { ok: false; reason: "no-mapping" | "filtered" };

/** What an outbound datagram becomes: its new source, or why it was dropped. */
export type OutboundResult = { ok: true; external: Addr } | { ok: false; reason: "ports-exhausted" };

function dependentKey(dependence: NatDependence, remote: Addr): string {
  switch (dependence) {
    case "endpoint-independent":
      return "*";
    case "address-dependent":
      return remote.address;
    case "address-and-port-dependent":
      return formatAddr(remote);
  }
}

/** One NAT's mapping table and behaviour; see the pipeline above. */
export class NatBox {
  readonly behaviour: NatBehaviour;
  /** Datagrams dropped per reason, and mappings made. */
  readonly stats = { mappings: 0, expired: 0, dropped: { "no-mapping": 0, filtered: 0, "ports-exhausted": 0 } };
  private readonly byKey = new Map<string, Mapping>();
  private readonly byPort = new Map<number, Mapping>();

  constructor(
    /** The public address of the NAT (its outside interface). */
    readonly publicAddress: string,
    behaviour: Partial<NatBehaviour>,
    private readonly rng: Rng,
    private readonly portRange: readonly [number, number] = [SYSTEM_PORTS_MAX + 1, 65535],
  ) {
    this.behaviour = { ...portRestricted, ...behaviour };
    if (!(this.behaviour.mappingTimeout > 0)) throw new RangeError(`mapping timeout ${this.behaviour.mappingTimeout} ms`);
  }

  // --- 1. Outbound ---

  /** The external source of a datagram from internal to remote at now, making or refreshing a mapping. */
  outbound(now: number, internal: Addr, remote: Addr): OutboundResult {
    this.expire(now);
    const dependent = dependentKey(this.behaviour.mapping, remote);
    const key = `${formatAddr(internal)}>${dependent}`;
    let mapping = this.byKey.get(key);
    if (mapping === undefined) {
      const port = this.pickPort(internal.port);
      if (port === undefined) {
        this.stats.dropped["ports-exhausted"]++;
        return { ok: false, reason: "ports-exhausted" };
      }
      mapping = { key, internal: { ...internal }, externalPort: port, remote: dependent, allowed: new Set(), expiresAt: 0 };
      this.byKey.set(key, mapping);
      this.byPort.set(port, mapping);
      this.stats.mappings++;
    }
    mapping.expiresAt = now + this.behaviour.mappingTimeout;
    mapping.allowed.add(dependentKey(this.behaviour.filtering, remote));
    return { ok: true, external: { family: internal.family, address: this.publicAddress, port: mapping.externalPort } };
  }

  private pickPort(internalPort: number): number | undefined {
    const [lo, hi] = this.portRange;
    if (this.behaviour.portPreservation && internalPort >= lo && internalPort <= hi && !this.byPort.has(internalPort)) return internalPort;
    // A random start, then the next free one: a full range is found out without endless draws.
    const span = hi - lo + 1;
    const start = this.rng.int(0, span - 1);
    for (let i = 0; i < span; i++) {
      const port = lo + ((start + i) % span);
      if (!this.byPort.has(port)) return port;
    }
    return undefined;
  }

  // --- 2. Inbound ---

  /** Where a datagram from remote to the external port goes, if the mapping and the filter let it in. */
  inbound(now: number, externalPort: number, remote: Addr): InboundResult {
    this.expire(now);
    const mapping = this.byPort.get(externalPort);
    if (mapping === undefined) {
      this.stats.dropped["no-mapping"]++;
      return { ok: false, reason: "no-mapping" };
    }
    if (this.behaviour.filtering !== "endpoint-independent" && !mapping.allowed.has(dependentKey(this.behaviour.filtering, remote))) {
      this.stats.dropped.filtered++;
      return { ok: false, reason: "filtered" };
    }
    if (this.behaviour.inboundRefresh) mapping.expiresAt = now + this.behaviour.mappingTimeout;
    return { ok: true, internal: { ...mapping.internal } };
  }

  // --- 3. Expiry ---

  /** The live mappings at now, oldest first. */
  mappings(now: number): NatMapping[] {
    this.expire(now);
    return [...this.byKey.values()].map((m) => ({
      internal: { ...m.internal },
      external: { family: m.internal.family, address: this.publicAddress, port: m.externalPort },
      remote: m.remote,
      allowed: [...m.allowed],
      expiresAt: m.expiresAt,
    }));
  }

  /** Forgets every mapping (a NAT reboot). */
  reset(): void {
    this.byKey.clear();
    this.byPort.clear();
  }

  private expire(now: number): void {
    for (const mapping of this.byKey.values()) {
      if (now < mapping.expiresAt) continue;
      this.byKey.delete(mapping.key);
      this.byPort.delete(mapping.externalPort);
      this.stats.expired++;
    }
  }
}
