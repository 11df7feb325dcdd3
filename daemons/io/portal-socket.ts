// The driver of a device's portal channel: a `ws` WebSocket to `<portal>/<role>/websocket`, one timer,
// and the sans-IO PortalChannel (daemons/proto/portal/channel.ts) deciding everything else.
//
// 1. The channel's `connect` opens a socket with the token as a bearer header and the device's query
//    (public_key, name, version). A refused upgrade is read to its end: the status, the problem
//    details and Retry-After go to the channel, which decides between backing off and signing out.
// 2. Socket events become channel inputs, stamped with the monotonic clock; events of a socket the
//    channel has already given up on are ignored (each socket has a generation).
// 3. After every input: transmits are written to the open socket, events handed to `onEvent` (the
//    ones the driver acts on, connect and close, are not), and the one timer re-armed.

import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { WebSocket } from "ws";
import { PortalChannel, type ChannelClose, type ChannelEvent } from "../proto/portal/channel.js";
import { MAX_PORTAL_FRAME_BYTES } from "../proto/portal/constants.js";
import type { DeviceRole, EventName, PayloadOf } from "../proto/portal/schema.js";

/** One message a device of role R sends, as its device machine hands it over. */
export type PortalOut<R extends DeviceRole> = { [E in EventName<R, "from_device">]: { event: E; payload: PayloadOf<R, "from_device", E> } }[EventName<R, "from_device">];

/** What the device sees of its channel: the channel's events but the driver's own. */
export type PortalSocketEvent<R extends DeviceRole> = Exclude<ChannelEvent<R>, { type: "connect" } | { type: "close" }>;

export interface PortalSocketOptions<R extends DeviceRole> {
  /** The portal's base URL (http or https; the socket uses ws or wss). */
  portalUrl: string;
  role: R;
  token: string;
  /** Query parameters of the connect: public_key, name, version. */
  query?: Record<string, string>;
  /** The phx_join payload: a relay's addresses; clients and gateways send none. */
  join?: PayloadOf<R, "from_device", "phx_join">;
  onEvent: (event: PortalSocketEvent<R>) => void;
  /** A frame from the portal failed to decode or validate (it is dropped): why. */
  onInvalid?: (reason: string) => void;
}

/** A device's connection to the portal: joined, heartbeating and reconnecting on its own. */
export class PortalSocket<R extends DeviceRole> {
  private readonly channel: PortalChannel<R>;
  private ws: WebSocket | undefined;
  private generation = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: PortalSocketOptions<R>) {
    this.channel = new PortalChannel({ role: options.role, random: (n) => randomBytes(n), ...(options.join !== undefined ? { join: options.join } : {}) });
  }

  /** Whether a joined socket is up. */
  get joined(): boolean {
    return this.channel.joined;
  }

  /** Frames from the portal that failed to decode or validate, and frames dropped from a full queue. */
  get counters(): { invalid: number; dropped: number } {
    return { invalid: this.channel.invalid, dropped: this.channel.dropped };
  }

  start(): void {
    this.channel.start(performance.now());
    this.pump();
  }

  /** Sends an event (queued until joined); returns the ref its reply will carry. */
  send<E extends EventName<R, "from_device">>(event: E, payload: PayloadOf<R, "from_device", E>): string {
    const ref = this.channel.send(performance.now(), event, payload);
    this.pump();
    return ref;
  }

  /** Sends a message as a device machine hands it over ({event, payload}); returns the ref. */
  sendMessage(message: PortalOut<R>): string {
    // The union pairs each event with its payload; TypeScript cannot carry that pairing into send's generic.
    return this.send(message.event, message.payload as PayloadOf<R, "from_device", typeof message.event>);
  }

  /** Closes the socket and stops reconnecting; resolves once the socket is gone. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const ws = this.ws;
    this.channel.stop(performance.now());
    this.pump();
    if (this.timer) clearTimeout(this.timer);
    if (ws && ws.readyState !== WebSocket.CLOSED) await new Promise<void>((resolve) => ws.once("close", () => resolve()));
  }

  private open(): void {
    const generation = ++this.generation;
    const url = new URL(`${this.options.portalUrl.replace(/^http/, "ws").replace(/\/+$/, "")}/${this.options.role}/websocket`);
    for (const [key, value] of Object.entries(this.options.query ?? {})) url.searchParams.set(key, value);
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.options.token}` }, maxPayload: MAX_PORTAL_FRAME_BYTES });
    this.ws = ws;
    const current = (): boolean => generation === this.generation;
    let ended = false;
    const end = (close: ChannelClose): void => {
      if (ended || !current()) return;
      ended = true;
      this.ws = undefined;
      this.channel.handleClose(performance.now(), close);
      this.pump();
    };
    ws.on("open", () => {
      if (!current()) return;
      this.channel.handleOpen(performance.now());
      this.pump();
    });
    ws.on("message", (data, isBinary) => {
      if (!current()) return;
      // A binary frame is not the protocol's: handed over as text, it fails to decode and is counted.
      const before = this.channel.invalid;
      this.channel.handleText(performance.now(), isBinary ? "" : String(data));
      if (this.channel.invalid !== before) this.options.onInvalid?.(this.channel.lastInvalid ?? "invalid frame");
      this.pump();
    });
    ws.on("unexpected-response", (_request, response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        if (body.length < 64 * 1024) body += chunk;
      });
      response.on("end", () => {
        let problem: Record<string, unknown> | undefined;
        try {
          const parsed: unknown = JSON.parse(body);
          if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) problem = parsed as Record<string, unknown>;
        } catch {
          problem = undefined;
        }
        const retryAfter = Number(response.headers["retry-after"]);
        const status = response.statusCode ?? 0;
        end({
          status,
          ...(problem ? { problem } : {}),
          ...(Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
          reason: `HTTP ${status}${typeof problem?.detail === "string" ? `: ${problem.detail}` : ""}`,
        });
        ws.terminate();
      });
    });
    ws.on("error", (error) => end({ reason: error.message }));
    ws.on("close", (code, reason) => end({ code, reason: `closed (${code}${reason.length > 0 ? ` ${String(reason)}` : ""})` }));
  }

  /** Writes transmits, carries out or hands over events, and re-arms the timer. */
  private pump(): void {
    for (let text = this.channel.pollTransmit(); text !== undefined; text = this.channel.pollTransmit()) {
      if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(text);
    }
    for (let event = this.channel.pollEvent(); event !== undefined; event = this.channel.pollEvent()) {
      if (event.type === "connect") this.open();
      else if (event.type === "close") {
        const ws = this.ws;
        if (ws) {
          ws.close(1000, event.reason.slice(0, 100));
          // A dead peer never completes the closing handshake: give it a moment, then drop the socket.
          setTimeout(() => ws.terminate(), 1_000).unref();
        }
      } else {
        // Neither connect nor close, as the branches above say; TypeScript cannot narrow an Exclude over a generic role.
        this.options.onEvent(event as PortalSocketEvent<R>);
      }
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const at = this.channel.pollTimeout();
    if (at === undefined || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.channel.handleTimeout(performance.now());
      this.pump();
    }, Math.max(0, Math.ceil(at - performance.now())));
  }
}
