// The two large payloads of an authorization, create_authorization to the gateway and
// authorization_created to the client, written as JSON text from parts that change rarely: the pair's
// secrets (per client and gateway key), each device's fields (per device row), the resource (per
// version, kept by the AccountView). Only the id and the expiry are new each time. The text is exactly
// what JSON.stringify writes for the same object, key for key (frame-parts.test.ts holds it to that),
// so a device cannot tell the difference; the portal saves writing out some 700 bytes twice per
// authorization.

import type { Device } from "../database/entities.js";
import type { PairSecrets } from "./pair-secrets.js";

/** A pair's secrets as JSON members: `"preshared_key":…` and `"client_ice":…,"gateway_ice":…`. */
export interface PairParts {
  presharedKey: string;
  ice: string;
}

export function pairParts(secrets: PairSecrets): PairParts {
  return {
    presharedKey: `"preshared_key":${JSON.stringify(secrets.presharedKey)}`,
    ice: `"client_ice":${JSON.stringify(secrets.clientIce)},"gateway_ice":${JSON.stringify(secrets.gatewayIce)}`,
  };
}

/** Per device row: a new row (the directory and connections replace them on change) gets new parts. */
export class DeviceParts {
  private readonly clients = new WeakMap<Device, string>();
  private readonly gateways = new WeakMap<Device, string>();

  /** The client's members in create_authorization's `client`: id, public_key, ipv4, ipv6. */
  client(device: Device): string {
    let text = this.clients.get(device);
    if (text === undefined) {
      const json = JSON.stringify({ id: device.id, public_key: device.publicKey, ipv4: device.ipv4, ipv6: device.ipv6 });
      text = json.slice(1, -1);
      this.clients.set(device, text);
    }
    return text;
  }

  /** The gateway's members in authorization_created: gateway_id, its key and addresses, site_id. */
  gateway(device: Device): string {
    let text = this.gateways.get(device);
    if (text === undefined) {
      const json = JSON.stringify({ gateway_id: device.id, gateway_public_key: device.publicKey, gateway_ipv4: device.ipv4, gateway_ipv6: device.ipv6, site_id: device.siteId });
      text = json.slice(1, -1);
      this.gateways.set(device, text);
    }
    return text;
  }
}

/** create_authorization's payload: {authorization_id, client: {id, public_key, ipv4, ipv6, preshared_key}, resource, client_ice, gateway_ice, expires_at}. */
export function createAuthorizationJson(authorizationId: string, client: string, pair: PairParts, resourceJson: string, expiresAt: string): string {
  return `{"authorization_id":${JSON.stringify(authorizationId)},"client":{${client},${pair.presharedKey}},"resource":${resourceJson},${pair.ice},"expires_at":${JSON.stringify(expiresAt)}}`;
}

/** authorization_created's payload: {resource_id, gateway_id, gateway_public_key, gateway_ipv4, gateway_ipv6, site_id, preshared_key, client_ice, gateway_ice, expires_at}. */
export function authorizationCreatedJson(resourceId: string, gateway: string, pair: PairParts, expiresAt: string): string {
  return `{"resource_id":${JSON.stringify(resourceId)},${gateway},${pair.presharedKey},${pair.ice},"expires_at":${JSON.stringify(expiresAt)}}`;
}
