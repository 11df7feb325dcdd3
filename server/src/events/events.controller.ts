// GET /api/events: the account's live changes as Server-Sent Events, the push channel the admin UI
// listens on (an EventSource with the session cookie; an API token works too).
//
// 1. On connect: `event: ready`, then a comment every KEEPALIVE_MS so proxies keep the stream open.
// 2. Presence: a device of the account joining or leaving any portal node (or a node going down with
//    its devices) is checked against presence (a device that left one node may still be on another)
//    and sent as `event: presence`, data {"device_id", "kind", "online"}.
// 3. Authorizations: each batch of the account's authorization records committed on any node is
//    sent as `event: authorizations`, data {"count"} (realtime/activity.ts).
// 4. Relay load: each load report of the account's relays, written on any node, is sent as
//    `event: relay_load`, data {"relay_id", "load"} with load as GET /api/relays shows it.
// 5. The stream ends when the browser goes; the subscriptions go with it. Without a realtime side
//    in this process the API answers 503 (problem details).

import { Controller, Get, Inject, Req, Res } from "@nestjs/common";
import { ApiBearerAuth, ApiOkResponse, ApiTags } from "@nestjs/swagger";
import type { DataSource } from "typeorm";
import { Caller } from "../auth/access.js";
import type { Principal } from "../auth/principal.js";
import { Problem } from "../http/problem.js";
import { onAuthorizationsRecorded, onRelayLoad } from "../realtime/activity.js";
import { devicesOnline, onPresenceChange, type PresenceChange, type PresenceDevice } from "../realtime/presence.js";
import { DATA_SOURCE } from "../tokens.js";

/** A comment this often keeps idle proxies from closing the stream. */
export const KEEPALIVE_MS = 15_000;

interface StreamRequest {
  on(event: "close", listener: () => void): void;
}

interface StreamResponse {
  writeHead(status: number, headers: Record<string, string>): void;
  write(chunk: string): boolean;
  end(): void;
}

/** The devices of `accountId` a presence announcement is about. */
export function devicesOf(change: PresenceChange, accountId: string): PresenceDevice[] {
  const devices: PresenceDevice[] = "device" in change ? [change.device] : change.devices;
  return devices.filter((d) => d.accountId === accountId);
}

@ApiTags("events")
@ApiBearerAuth()
@Controller("api/events")
export class EventsController {
  constructor(@Inject(DATA_SOURCE) private readonly db: DataSource) {}

  @Get()
  @ApiOkResponse({ description: "text/event-stream: `ready`, then `presence` {device_id, kind, online} whenever a device of the account connects or disconnects, `authorizations` {count} whenever authorization records of the account are written, and `relay_load` {relay_id, load} whenever one of its relays reports its load, on any portal node." })
  stream(@Caller() caller: Principal, @Req() req: StreamRequest, @Res() res: StreamResponse): void {
    const accountId = caller.accountId;
    let open = true;
    // Changes are sent in the order heard, each after its online check.
    let queue: Promise<void> = Promise.resolve();
    const unsubscribe = onPresenceChange(this.db, (change) => {
      const devices = devicesOf(change, accountId);
      if (devices.length === 0) return;
      queue = queue.then(async () => {
        const online = await devicesOnline(this.db, accountId, devices.map((d) => d.deviceId));
        if (!open || online === undefined) return;
        for (const d of devices) res.write(`event: presence\ndata: ${JSON.stringify({ device_id: d.deviceId, kind: d.kind, online: online.has(d.deviceId) })}\n\n`);
      }).catch(() => undefined);
    });
    if (unsubscribe === undefined) throw new Problem(503, "unavailable", "Service unavailable", "this portal runs no realtime side, so it has no live changes to send");
    const unsubscribeRecorded = onAuthorizationsRecorded(this.db, accountId, (count) => {
      if (open) res.write(`event: authorizations\ndata: ${JSON.stringify({ count })}\n\n`);
    });
    const unsubscribeLoad = onRelayLoad(this.db, accountId, (relayId, load) => {
      if (open) res.write(`event: relay_load\ndata: ${JSON.stringify({ relay_id: relayId, load })}\n\n`);
    });
    res.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache, no-transform", Connection: "keep-alive", "X-Accel-Buffering": "no" });
    res.write("retry: 2000\nevent: ready\ndata: {}\n\n");
    const keepalive = setInterval(() => res.write(": keepalive\n\n"), KEEPALIVE_MS);
    keepalive.unref();
    req.on("close", () => {
      open = false;
      clearInterval(keepalive);
      unsubscribe();
      unsubscribeRecorded?.();
      unsubscribeLoad?.();
      res.end();
    });
  }
}
