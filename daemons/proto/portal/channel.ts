// A device's side of the portal channel, sans-IO: one WebSocket at a time, joined on the role's topic,
// kept alive by heartbeats, opened again with backoff when it drops, and given up only when the
// portal says the token is no good.
//
// Driving contract: call one input (start, handleOpen, handleText, handleClose, handleTimeout, send,
// stop) with the current monotonic time in ms, then drain pollTransmit() (text frames for the open
// socket) and pollEvent() until they return undefined, and arm a timer for pollTimeout(). A `connect`
// event asks the driver to open a socket; a `close` event asks it to close the open one; either way
// the driver reports the socket's end with handleClose. Randomness (backoff jitter) comes from the
// `random` option.
//
// 1. Connect: start (or a reconnect timer) emits `connect`. The socket opens (handleOpen) → phx_join
//    on the role's topic, carrying the `join` payload (a relay's addresses); its ok reply → `joined`,
//    and the backoff starts again from the bottom once the socket has stayed up STABLE_AFTER_MS. No
//    reply within JOIN_TIMEOUT_MS → the socket is closed.
// 2. Frames in (handleText): decoded (MAX_PORTAL_FRAME_BYTES), then validated against the schema as
//    events to this role. Pushes → `message`; replies to send() → `reply` with the request's ref;
//    replies to joins and heartbeats are consumed. A frame that fails is counted in `invalid` and
//    dropped; it never throws and never closes the socket (the portal is newer, perhaps).
// 3. Frames out (send): the event is framed with a fresh ref and written at once when joined;
//    otherwise queued (QUEUE_MAX, oldest dropped and counted) and written after the next join, in
//    order. Replies to requests lost with a socket never come: the caller's own timers cover them.
// 4. Heartbeats: every HEARTBEAT_INTERVAL_MS while open. Nothing heard for HEARTBEAT_TIMEOUT_MS (no
//    frame, no heartbeat reply) → `close`: the socket is dead even if TCP has not noticed.
// 5. Ends (handleClose): a refused upgrade carries its HTTP status and problem details. 401 and 403
//    → `signed_out` and no more connects (sign in again; DESIGN.md "only an invalid token makes a
//    device sign in again"). 429 → wait the problem's Retry-After, at least the backoff. Anything
//    else → `disconnected`, then `connect` after the backoff: RECONNECT_BASE_MS doubling per failed
//    attempt up to RECONNECT_MAX_MS, each wait drawn from its upper half so devices spread out.

import { HEARTBEAT_INTERVAL_MS, HEARTBEAT_TIMEOUT_MS, MAX_PORTAL_FRAME_BYTES, EVENT_REPLY } from "./constants.js";
import { decodeFrame, encodeFrame, heartbeatFrame, joinFrame } from "./frames.js";
import { topicOf, validateMessage, type DeviceRole, type EventName, type PayloadOf } from "./schema.js";

/** The first reconnect waits about this long; each failed attempt doubles it. */
export const RECONNECT_BASE_MS = 500;
/** Reconnect waits stop growing here. */
export const RECONNECT_MAX_MS = 30_000;
/** A socket up this long counts as healthy: the next drop starts the backoff from the bottom again. */
export const STABLE_AFTER_MS = 30_000;
/** The portal answers phx_join at once; a socket that has not within this long is closed. */
export const JOIN_TIMEOUT_MS = 10_000;
/** Frames kept while there is no joined socket. */
export const QUEUE_MAX = 256;

/** How a socket ended, as the driver saw it. */
export interface ChannelClose {
  /** The HTTP status of a refused upgrade. */
  status?: number;
  /** The refusal's problem details (RFC 7807), when it had any. */
  problem?: Record<string, unknown>;
  /** Retry-After of a refusal, in ms. */
  retryAfterMs?: number;
  /** The WebSocket close code of a socket that was open. */
  code?: number;
  /** Why, in words, for the log. */
  reason?: string;
}

export type ChannelEvent<R extends DeviceRole> =
  /** Open a socket now (the driver knows the URL and token). */
  | { type: "connect"; attempt: number }
  /** Close the open socket, then report it with handleClose. */
  | { type: "close"; reason: string }
  /** The join was answered: the portal's `init` follows as a message. */
  | { type: "joined" }
  /** A push from the portal, validated. */
  | { [E in EventName<R, "to_device">]: { type: "message"; event: E; payload: PayloadOf<R, "to_device", E> } }[EventName<R, "to_device">]
  /** The reply to a frame sent with send(). */
  | { type: "reply"; ref: string; status: "ok" | "error"; response: Record<string, unknown> }
  /** The socket ended; a connect follows after `retryInMs`. */
  | { type: "disconnected"; reason: string; retryInMs: number }
  /** The portal refused the token: no more connects until a new channel is made. */
  | { type: "signed_out"; status: number; detail: string };

export interface PortalChannelOptions<R extends DeviceRole> {
  role: R;
  /** Uniform random bytes (for the backoff's jitter). */
  random: (length: number) => Uint8Array;
  /** The phx_join payload, sent with every join: a relay's addresses; clients and gateways send none. */
  join?: PayloadOf<R, "from_device", "phx_join">;
}

type Phase = "idle" | "waiting" | "connecting" | "joining" | "joined" | "closing" | "signed_out" | "stopped";

/** One device's portal channel: join, heartbeats, backoff, validated events in, queued events out. */
export class PortalChannel<R extends DeviceRole> {
  private phase: Phase = "idle";
  private attempt = 0;
  private nextRef = 1;
  private joinRef: string | undefined;
  private readonly heartbeatRefs = new Set<string>();
  private readonly pending = new Set<string>();
  private queue: string[] = [];
  private readonly transmits: string[] = [];
  private readonly events: ChannelEvent<R>[] = [];
  private openedAt = 0;
  private lastHeard = 0;
  private nextHeartbeat = Infinity;
  private joinDeadline = Infinity;
  private reconnectAt = Infinity;
  /** Frames the portal sent that failed to decode or validate. */
  invalid = 0;
  /** Why the last of those failed (event and error), for the driver's log. */
  lastInvalid: string | undefined;
  /** Frames dropped from a full queue while disconnected. */
  dropped = 0;

  constructor(private readonly options: PortalChannelOptions<R>) {}

  /** Whether a joined socket is up, so sent frames leave at once. */
  get joined(): boolean {
    return this.phase === "joined";
  }

  /** Starts connecting. */
  start(now: number): void {
    if (this.phase !== "idle") return;
    this.connect(now);
  }

  /** Stops for good: closes the socket if one is open, and never connects again. */
  stop(_now: number): void {
    const open = this.phase === "connecting" || this.phase === "joining" || this.phase === "joined";
    this.phase = "stopped";
    this.clearTimers();
    if (open) this.events.push({ type: "close", reason: "stopped" });
  }

  /** The socket asked for by `connect` is open. */
  handleOpen(now: number): void {
    if (this.phase !== "connecting") return;
    this.phase = "joining";
    this.openedAt = now;
    this.lastHeard = now;
    this.joinRef = this.ref();
    this.transmits.push(encodeFrame(joinFrame(this.options.role, this.joinRef, this.options.join ?? {})));
    this.joinDeadline = now + JOIN_TIMEOUT_MS;
    this.nextHeartbeat = now + HEARTBEAT_INTERVAL_MS;
  }

  /** A text frame from the portal. */
  handleText(now: number, text: string): void {
    if (this.phase !== "joining" && this.phase !== "joined") return;
    this.lastHeard = now;
    const decoded = decodeFrame(text, MAX_PORTAL_FRAME_BYTES);
    if (!decoded.ok) {
      this.invalid++;
      this.lastInvalid = `undecodable frame: ${decoded.error.message}`;
      return;
    }
    const checked = validateMessage(this.options.role, "to_device", decoded.frame);
    if (!checked.ok) {
      this.invalid++;
      this.lastInvalid = `${decoded.frame.event}: ${checked.error.path} ${checked.error.message}`;
      return;
    }
    const { event, payload, ref } = checked.value;
    if (event !== EVENT_REPLY) {
      this.events.push({ type: "message", event, payload } as ChannelEvent<R>);
      return;
    }
    const reply = payload as { status: "ok" | "error"; response: Record<string, unknown> };
    if (ref === null) return;
    if (ref === this.joinRef) {
      this.joinRef = undefined;
      this.joinDeadline = Infinity;
      if (reply.status !== "ok") {
        this.closeSocket(`the portal refused the join: ${JSON.stringify(reply.response).slice(0, 200)}`);
        return;
      }
      this.phase = "joined";
      this.events.push({ type: "joined" });
      for (const frame of this.queue) this.transmits.push(frame);
      this.queue = [];
    } else if (this.heartbeatRefs.delete(ref)) {
      // Heard: lastHeard is already updated.
    } else if (this.pending.delete(ref)) {
      this.events.push({ type: "reply", ref, status: reply.status, response: reply.response });
    }
  }

  /** Sends an event to the portal; returns the ref its reply will carry. */
  send<E extends EventName<R, "from_device">>(_now: number, event: E, payload: PayloadOf<R, "from_device", E>): string {
    const ref = this.ref();
    const frame = encodeFrame({ topic: topicOf(this.options.role, event), event, payload: payload as object, ref });
    this.pending.add(ref);
    if (this.phase === "joined") this.transmits.push(frame);
    else {
      this.queue.push(frame);
      if (this.queue.length > QUEUE_MAX) {
        this.queue.shift();
        this.dropped++;
      }
    }
    return ref;
  }

  /** The socket ended (refused, closed by either side, or failed to open). */
  handleClose(now: number, close: ChannelClose): void {
    if (this.phase === "idle" || this.phase === "waiting" || this.phase === "signed_out" || this.phase === "stopped") return;
    this.clearTimers();
    this.heartbeatRefs.clear();
    // Replies to requests in flight will not come over another socket.
    this.pending.clear();
    this.joinRef = undefined;
    if (close.status === 401 || close.status === 403) {
      this.phase = "signed_out";
      const detail = typeof close.problem?.detail === "string" ? close.problem.detail : (close.reason ?? `HTTP ${close.status}`);
      this.events.push({ type: "signed_out", status: close.status, detail });
      return;
    }
    if (this.openedAt > 0 && now - this.openedAt >= STABLE_AFTER_MS) this.attempt = 0;
    let wait = this.backoff();
    if (close.status === 429 && close.retryAfterMs !== undefined) wait = Math.max(wait, close.retryAfterMs);
    this.attempt++;
    this.phase = "waiting";
    this.openedAt = 0;
    this.reconnectAt = now + wait;
    const reason = close.reason ?? (close.status !== undefined ? `HTTP ${close.status}` : `closed (${close.code ?? "no code"})`);
    this.events.push({ type: "disconnected", reason, retryInMs: wait });
  }

  handleTimeout(now: number): void {
    if (now >= this.reconnectAt) {
      this.reconnectAt = Infinity;
      if (this.phase === "waiting") this.connect(now);
    }
    if (this.phase !== "joining" && this.phase !== "joined") return;
    if (now >= this.joinDeadline) {
      this.closeSocket(`no answer to the join within ${JOIN_TIMEOUT_MS} ms`);
      return;
    }
    if (now - this.lastHeard >= HEARTBEAT_TIMEOUT_MS) {
      this.closeSocket(`nothing heard from the portal for ${HEARTBEAT_TIMEOUT_MS} ms`);
      return;
    }
    if (now >= this.nextHeartbeat) {
      const ref = this.ref();
      this.heartbeatRefs.add(ref);
      this.transmits.push(encodeFrame(heartbeatFrame(ref)));
      this.nextHeartbeat = now + HEARTBEAT_INTERVAL_MS;
    }
  }

  pollTransmit(): string | undefined {
    return this.transmits.shift();
  }

  pollEvent(): ChannelEvent<R> | undefined {
    return this.events.shift();
  }

  pollTimeout(): number | undefined {
    let at = this.reconnectAt;
    if (this.phase === "joining" || this.phase === "joined") at = Math.min(at, this.joinDeadline, this.nextHeartbeat, this.lastHeard + HEARTBEAT_TIMEOUT_MS);
    return at === Infinity ? undefined : at;
  }

  private connect(_now: number): void {
    this.phase = "connecting";
    this.events.push({ type: "connect", attempt: this.attempt });
  }

  private closeSocket(reason: string): void {
    this.phase = "closing";
    this.clearTimers();
    this.events.push({ type: "close", reason });
  }

  private clearTimers(): void {
    this.nextHeartbeat = Infinity;
    this.joinDeadline = Infinity;
    this.reconnectAt = Infinity;
  }

  /** This attempt's wait: the upper half of the doubled base, so waits grow and devices spread out. */
  private backoff(): number {
    const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.min(this.attempt, 16));
    const bytes = this.options.random(4);
    const unit = (((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0) / 2 ** 32;
    return Math.round(ceiling / 2 + (unit * ceiling) / 2);
  }

  private ref(): string {
    return String(this.nextRef++);
  }
}
