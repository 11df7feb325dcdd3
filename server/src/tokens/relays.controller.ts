// GET /api/relays: the account's relays for the admin UI. A relay is its token (POST /api/relay_tokens):
// the hub keys a relay's presence and its announced addresses by the token's id, so every relay token
// is listed, whether or not a relay has joined with it yet.
//
// 1. One page of the account's relay tokens, in id order.
// 2. Where each relay listens, as it said when it last joined: relay_endpoints, which the hub writes on
//    every join and keeps after the relay leaves, so any portal node can answer (not only the node the
//    relay is connected to), and an offline relay still shows where it was.
// 3. Whether each is connected to a live portal node now, from presence (null when this portal runs
//    no realtime side, as for a site's gateways).
// 4. Its load as it last reported it over its socket (the relay channel's `load` event, which the hub
//    writes to relay_endpoints too): null before its first report after its last join.

import { Controller, Get, Inject, Query } from "@nestjs/common";
import { ApiBearerAuth, ApiOkResponse, ApiQuery, ApiTags } from "@nestjs/swagger";
import type { DataSource } from "typeorm";
import { Scope } from "../auth/access.js";
import type { AccountScope } from "../database/account-scope.js";
import { TokenEntity, type Token } from "../database/entities.js";
import { listBody, PAGE_QUERY_DOCS, pageQuery, type ListBody } from "../http/input.js";
import type { RelayLoadView } from "../realtime/activity.js";
import { devicesOnline } from "../realtime/presence.js";
import { DATA_SOURCE } from "../tokens.js";

export interface RelayView {
  /** The relay token's id, which is the relay's id in presence and in devices' relay lists. */
  id: string;
  name: string;
  /** Connected to a live portal node now; null when this portal runs no realtime side. */
  online: boolean | null;
  /** The public addresses and UDP port it announced when it last joined; null before its first join. */
  ipv4: string | null;
  ipv6: string | null;
  port: number | null;
  /** When it last joined and announced those addresses. */
  announced_at: string | null;
  /** What it carried at its last report since it last joined, and the payload bytes a second it relayed (both directions) since the report before. */
  load: RelayLoadView | null;
  expires_at: string | null;
  last_used_at: string | null;
  created_at: string;
}

interface EndpointRow {
  relay_id: string;
  ipv4: string | null;
  ipv6: string | null;
  port: number;
  updated_at: Date | string;
  allocations: number | null;
  channels: number | null;
  /** bigint: a string from the driver. */
  bytes_per_second: string | number | null;
  load_at: Date | string | null;
}

@ApiTags("relays")
@ApiBearerAuth()
@Controller("api/relays")
export class RelaysController {
  constructor(@Inject(DATA_SOURCE) private readonly db: DataSource) {}

  @Get()
  @ApiQuery(PAGE_QUERY_DOCS[0]!)
  @ApiQuery(PAGE_QUERY_DOCS[1]!)
  @ApiOkResponse({
    description:
      "One page of the account's relays (one per relay token), in id order: `online` (connected to a live portal node now; null when this portal runs no realtime side), the addresses each announced when it last joined (null before it first joins), and `load`, its last report since then (allocations, channel bindings, relayed payload bytes a second; null before its first report).",
  })
  async list(@Scope() scope: AccountScope, @Query() query: Record<string, unknown>): Promise<ListBody<RelayView>> {
    const page = await scope.repository(TokenEntity).page({ where: { kind: "relay" }, ...pageQuery(query) });
    const ids = page.rows.map((t) => t.id);
    const [endpoints, online] = await Promise.all([this.endpoints(scope.accountId, ids), devicesOnline(this.db, scope.accountId, ids)]);
    return listBody(page, (token) => relayView(token, endpoints.get(token.id), online === undefined ? null : online.has(token.id)));
  }

  /** The announced addresses of these relays of the account (relay_endpoints belongs to realtime, which writes it with SQL too). */
  private async endpoints(accountId: string, relayIds: string[]): Promise<Map<string, EndpointRow>> {
    if (relayIds.length === 0) return new Map();
    const rows = (await this.db.query(
      `SELECT relay_id, host(ipv4) AS ipv4, host(ipv6) AS ipv6, port, updated_at, allocations, channels, bytes_per_second, load_at FROM relay_endpoints WHERE account_id = $1 AND relay_id = ANY($2::uuid[])`,
      [accountId, relayIds],
    )) as EndpointRow[];
    return new Map(rows.map((row) => [row.relay_id, row]));
  }
}

function relayView(token: Token, endpoint: EndpointRow | undefined, online: boolean | null): RelayView {
  return {
    id: token.id,
    name: token.name,
    online,
    ipv4: endpoint?.ipv4 ?? null,
    ipv6: endpoint?.ipv6 ?? null,
    port: endpoint === undefined ? null : Number(endpoint.port),
    announced_at: endpoint === undefined ? null : new Date(endpoint.updated_at).toISOString(),
    load:
      endpoint?.load_at === null || endpoint?.load_at === undefined
        ? null
        : { allocations: Number(endpoint.allocations), channels: Number(endpoint.channels), bytes_per_second: Number(endpoint.bytes_per_second), reported_at: new Date(endpoint.load_at).toISOString() },
    expires_at: token.expiresAt?.toISOString() ?? null,
    last_used_at: token.lastUsedAt?.toISOString() ?? null,
    created_at: token.createdAt.toISOString(),
  };
}
