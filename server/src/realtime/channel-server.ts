// The realtime channels: WebSocket endpoints for clients, gateways and relays on the portal's HTTP
// server, speaking JSON frames in Phoenix-channel shape (daemons/proto/portal is the schema).
//
// 1. Upgrade: the path names the role (/client/websocket, /gateway/websocket, /relay/websocket); the
//    token (Authorization: Bearer, or ?token=) must be valid and of the role's kind. Connects are rate
//    limited per token and per address. Clients and gateways name their WireGuard key (?public_key=,
//    ?name=, and ?version= major.minor.patch): the device is registered, or found again, before the
//    socket opens. Every refusal is an HTTP problem-details answer, so a device can tell "sign in
//    again" (401) from "try later" (429).
// 2. Join: the device sends phx_join on its role's topic within JOIN_TIMEOUT_MS; the reply is ok and
//    the handlers push `init`.
// 3. Frames: each is decoded and its payload validated against the schema before any handler sees it;
//    a bad frame gets an error reply (or is dropped when it has no ref) and is counted, never thrown.
//    A handler may answer later (LaterReply): the socket goes on with its next frames meanwhile, and
//    the reply follows when the work is done. request_authorization is answered so, once its outcome
//    has been pushed, so the push and the reply leave in one write.
// 4. Heartbeats on topic `phoenix` are answered; a socket silent for HEARTBEAT_TIMEOUT_MS is closed.
// 5. Close: the handlers hear of it once, whoever closed.

import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import {
  decodeFrame,
  encodeFrame,
  HEARTBEAT_TIMEOUT_MS,
  MAX_FRAME_BYTES,
  validatePayload,
  type DeviceRole,
  type Frame,
} from "../../../daemons/proto/portal/index.js";
import type { AuthGuard } from "../auth/auth.guard.js";
import type { Principal } from "../auth/principal.js";
import type { RateLimiter } from "../auth/rate-limit.js";
import { AccountScope } from "../database/account-scope.js";
import type { DataSource } from "typeorm";
import type { Device, TokenKind } from "../database/entities.js";
import type { DevicesService } from "../devices/devices.service.js";
import { Problem, toProblem } from "../http/problem.js";
import { parseVersion } from "./versions.js";

export const JOIN_TIMEOUT_MS = 10_000;
const SWEEP_EVERY_MS = 5_000;
const PUBLIC_KEY = /^[A-Za-z0-9+/]{43}=$/;

/** A plain object with no properties of its own: `{}` as JSON. */
function isEmpty(value: object): boolean {
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key in value) if (Object.hasOwn(value, key)) return false;
  return true;
}

const ROLE_OF_PATH: Record<string, DeviceRole> = { "/client/websocket": "client", "/gateway/websocket": "gateway", "/relay/websocket": "relay" };
const KIND_OF_ROLE: Record<DeviceRole, TokenKind> = { client: "client", gateway: "gateway", relay: "relay" };

/** One device's socket, from upgrade to close. */
export class DeviceConnection {
  readonly id = randomUUID();
  joined = false;
  lastHeard: number;
  closed = false;
  /** The validated payload of its phx_join (a relay's addresses). */
  joinPayload: Record<string, unknown> = {};
  /** Frames this connection sent that we could not use, for logs and tests. */
  badFrames = 0;

  constructor(
    readonly role: DeviceRole,
    readonly principal: Principal,
    readonly scope: AccountScope,
    /** The client or gateway device; null for relays, which are not devices. Kept current by the hub (verification). */
    public device: Device | null,
    /** What the device told us at connect: the query string, for relays their addresses. */
    readonly params: URLSearchParams,
    readonly remoteAddress: string,
    private readonly socket: WebSocket,
    now: number,
  ) {
    this.lastHeard = now;
  }

  /** Sends an event on the role's topic; dropped silently once the socket is closing. */
  push(event: string, payload: object): void {
    this.send({ topic: this.role, event, payload, ref: null });
  }

  /**
   * push() with the payload already written as JSON text (a JSON object): the frames of an
   * authorization are put together from parts kept per resource and per pair, not written out whole
   * each time. `event` is one of the schema's names, which need no escaping.
   */
  pushJson(event: string, payloadJson: string): void {
    this.sendText(`{"topic":"${this.role}","event":"${event}","payload":${payloadJson},"ref":null}`);
  }

  reply(frame: Frame, status: "ok" | "error", response: object): void {
    // The same text encodeFrame writes, without building the envelope first: most replies are {}.
    const body = isEmpty(response) ? "{}" : JSON.stringify(response);
    this.sendText(`{"topic":${JSON.stringify(frame.topic)},"event":"phx_reply","payload":{"status":"${status}","response":${body}},"ref":${JSON.stringify(frame.ref)}}`);
  }

  send(frame: Frame): void {
    this.sendText(encodeFrame(frame));
  }

  private sendText(text: string): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    // Frames sent in one turn of the event loop leave in one write: a batch of authorizations
    // committing together pushes many frames to the same gateway at once, and a syscall per frame
    // was the portal's largest cost.
    const raw = (this.socket as unknown as { _socket?: Socket })._socket;
    if (raw !== undefined && !this.corked) {
      this.corked = true;
      raw.cork();
      process.nextTick(() => {
        this.corked = false;
        raw.uncork();
      });
    }
    this.socket.send(text);
  }

  private corked = false;

  close(code = 1000, reason = ""): void {
    this.socket.close(code, reason.slice(0, 120));
  }

  /** Ends the socket at once, without the closing handshake (a node going down). */
  terminate(): void {
    this.socket.terminate();
  }
}

/** A reply a handler gives once `response` settles, without holding up the socket's next frames. */
export class LaterReply {
  constructor(readonly response: Promise<object>) {}
}

/** What the channels call into: init on join, the devices' events, and closes. */
export interface ChannelHandlers {
  joined(connection: DeviceConnection): Promise<void>;
  /**
   * A validated event from a device; the result, if any, is the reply's response, now or (LaterReply)
   * later. Given synchronously, the socket's next frame is taken without a turn of the microtask queue;
   * a promise holds the socket's later frames until it settles.
   */
  event(connection: DeviceConnection, event: string, payload: Record<string, unknown>): object | LaterReply | void | Promise<object | LaterReply | void>;
  closed(connection: DeviceConnection): void;
}

export interface ChannelServerOptions {
  db: DataSource;
  guard: AuthGuard;
  limiter: RateLimiter;
  devices: DevicesService;
  handlers: ChannelHandlers;
  log: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
  now?: () => number;
}

export class ChannelServer {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  readonly connections = new Set<DeviceConnection>();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly options: ChannelServerOptions) {
    this.now = options.now ?? (() => Date.now());
  }

  attach(server: Server): void {
    server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.upgrade(request, socket, head);
    });
    this.sweeper = setInterval(() => this.sweep(), SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  /** Closes every socket (1001: going away) and stops accepting new ones. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const connection of this.connections) connection.close(1001, "portal shutting down");
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private async upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", () => socket.destroy());
    let accepted: { role: DeviceRole; principal: Principal; device: Device | null; params: URLSearchParams };
    try {
      accepted = await this.admit(request);
    } catch (error) {
      const problem = toProblem(error);
      if (problem.status >= 500) this.options.log("error", "websocket connect failed", { error: String((error as Error)?.stack ?? error) });
      const headers = error instanceof Problem ? error.headers : {};
      refuse(socket, problem.status, { "content-type": "application/problem+json", ...headers }, JSON.stringify(problem));
      return;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => this.open(ws, request, accepted));
  }

  /** Step 1: who is connecting, as what, and with which device; throws a Problem to refuse. */
  private async admit(request: IncomingMessage): Promise<{ role: DeviceRole; principal: Principal; device: Device | null; params: URLSearchParams }> {
    const url = new URL(request.url ?? "/", "http://portal.invalid");
    const role = ROLE_OF_PATH[url.pathname];
    if (role === undefined) throw Problem.notFound(`the websocket endpoint ${url.pathname}`);
    const address = request.socket.remoteAddress ?? "unknown";
    const addressWait = this.options.limiter.take(`connect-ip:${address}`);
    if (addressWait > 0) throw Problem.rateLimited(addressWait, "this client address");

    const authorization = request.headers.authorization;
    const bearer = typeof authorization === "string" ? /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] : undefined;
    const presented = bearer ?? url.searchParams.get("token") ?? undefined;
    if (presented === undefined) throw Problem.unauthenticated(`connecting as a ${role} needs its token: Authorization: Bearer <token> or ?token=`);
    const principal = await this.options.guard.authenticate(presented);
    if (principal.tokenKind !== KIND_OF_ROLE[role]) throw Problem.forbidden(`a ${principal.tokenKind} token cannot connect as a ${role}`);
    const tokenWait = this.options.limiter.take(`connect:${principal.tokenId}`);
    if (tokenWait > 0) throw Problem.rateLimited(tokenWait);

    const params = url.searchParams;
    params.delete("token");
    if (role === "relay") return { role, principal, device: null, params };
    const publicKey = params.get("public_key");
    const errors = [];
    if (publicKey === null || !PUBLIC_KEY.test(publicKey)) {
      errors.push({ field: "public_key", code: "public_key.invalid", message: "public_key must be the device's WireGuard public key, 32 bytes in base64" });
    }
    const version = params.get("version");
    if (version !== null && parseVersion(version) === undefined) {
      errors.push({ field: "version", code: "version.invalid", message: "version must be the device's version, major.minor.patch (an optional -suffix of up to 32 characters)" });
    }
    const name = (params.get("name") ?? role).trim();
    if (name === "" || [...name].length > 255 || /\p{Cc}/u.test(name)) errors.push({ field: "name", code: "name.invalid", message: "name must be 1-255 characters without control characters" });
    if (errors.length > 0) throw Problem.invalid(errors);
    const scope = new AccountScope(this.options.db, principal.accountId, principal.actorId);
    const owner = role === "client" ? { kind: "client" as const, actorId: principal.actorId! } : { kind: "gateway" as const, siteId: principal.siteId! };
    const { device } = await this.options.devices.register(scope, owner, { name, publicKey: publicKey!, version });
    return { role, principal, device, params };
  }

  private open(ws: WebSocket, request: IncomingMessage, accepted: { role: DeviceRole; principal: Principal; device: Device | null; params: URLSearchParams }): void {
    const scope = new AccountScope(this.options.db, accepted.principal.accountId, accepted.principal.actorId);
    const connection = new DeviceConnection(accepted.role, accepted.principal, scope, accepted.device, accepted.params, request.socket.remoteAddress ?? "", ws, this.now());
    this.connections.add(connection);
    // One frame at a time per socket, in order: a device's events may depend on each other. A frame
    // handled at once (most are) lets the next one through at once; one that waits holds the frames
    // after it here until it is done.
    const waiting: { data: RawData; isBinary: boolean }[] = [];
    let busy = false;
    const failed = (error: unknown): void => {
      this.options.log("error", "websocket frame failed", { error: String((error as Error)?.stack ?? error), role: connection.role });
    };
    const next = (): void => {
      busy = false;
      while (!busy && waiting.length > 0) {
        const frame = waiting.shift()!;
        take(frame.data, frame.isBinary);
      }
    };
    const take = (data: RawData, isBinary: boolean): void => {
      let pending: Promise<void> | void;
      try {
        pending = this.receive(connection, data, isBinary);
      } catch (error) {
        failed(error);
        return;
      }
      if (pending === undefined) return;
      busy = true;
      pending.catch(failed).finally(next);
    };
    ws.on("message", (data: RawData, isBinary: boolean) => {
      if (busy) waiting.push({ data, isBinary });
      else take(data, isBinary);
    });
    ws.on("close", () => {
      if (connection.closed) return;
      connection.closed = true;
      this.connections.delete(connection);
      if (connection.joined) this.options.handlers.closed(connection);
    });
    ws.on("error", () => ws.terminate());
  }

  /** One frame: handled at once, or a promise of it when a handler has to wait. */
  private receive(connection: DeviceConnection, data: RawData, isBinary: boolean): Promise<void> | void {
    connection.lastHeard = this.now();
    if (isBinary) {
      connection.badFrames++;
      return;
    }
    const decoded = decodeFrame(rawText(data));
    if (!decoded.ok) {
      connection.badFrames++;
      return;
    }
    const frame = decoded.frame;
    if (frame.topic === "phoenix" && frame.event === "heartbeat") {
      connection.reply(frame, "ok", {});
      return;
    }
    if (frame.topic !== connection.role) {
      connection.badFrames++;
      connection.reply(frame, "error", { reason: "unmatched_topic", detail: `this socket joins the topic "${connection.role}"` });
      return;
    }
    if (frame.event === "phx_join") {
      if (connection.joined) {
        connection.reply(frame, "error", { reason: "already_joined" });
        return;
      }
      const valid = validatePayload(connection.role, "from_device", "phx_join", frame.payload);
      if (!valid.ok) {
        connection.badFrames++;
        connection.reply(frame, "error", { reason: valid.error.code, path: valid.error.path, detail: valid.error.message });
        return;
      }
      connection.joined = true;
      connection.joinPayload = valid.value as Record<string, unknown>;
      connection.reply(frame, "ok", {});
      return this.options.handlers.joined(connection);
    }
    if (!connection.joined) {
      connection.reply(frame, "error", { reason: "not_joined", detail: `join the topic "${connection.role}" first` });
      return;
    }
    const valid = validatePayload(connection.role, "from_device", frame.event, frame.payload);
    if (!valid.ok) {
      connection.badFrames++;
      connection.reply(frame, "error", { reason: valid.error.code, path: valid.error.path, detail: valid.error.message });
      return;
    }
    const response = this.options.handlers.event(connection, frame.event, valid.value as Record<string, unknown>);
    if (response instanceof Promise) return response.then((settled) => this.answer(connection, frame, settled));
    this.answer(connection, frame, response);
  }

  /** The reply to a device's event, as its handler gave it. */
  private answer(connection: DeviceConnection, frame: Frame, response: object | LaterReply | void): void {
    if (response instanceof LaterReply) {
      response.response.then(
        (later) => {
          if (frame.ref !== null) connection.reply(frame, "ok", later);
        },
        (error: unknown) => {
          this.options.log("error", "websocket event failed", { error: String((error as Error)?.stack ?? error), role: connection.role, event: frame.event });
          if (frame.ref !== null) connection.reply(frame, "error", { reason: "internal" });
        },
      );
      return;
    }
    if (frame.ref !== null) connection.reply(frame, "ok", response ?? {});
  }

  /** Steps 2 and 4: sockets that never joined, or went quiet, are closed. */
  private sweep(): void {
    const now = this.now();
    for (const connection of this.connections) {
      const silent = now - connection.lastHeard;
      if (!connection.joined && silent > JOIN_TIMEOUT_MS) connection.close(4000, "join timeout");
      else if (silent > HEARTBEAT_TIMEOUT_MS) connection.close(4001, "heartbeat timeout");
    }
  }
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.from(data).toString("utf8");
}

const REASONS: Record<number, string> = { 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable" };

/** Answers an upgrade request with a plain HTTP response and closes the socket. */
function refuse(socket: Duplex, status: number, headers: Record<string, string>, body: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const lines = [`HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}`, ...Object.entries({ ...headers, "content-length": String(Buffer.byteLength(body)), connection: "close" }).map(([k, v]) => `${k}: ${v}`)];
  socket.end(`${lines.join("\r\n")}\r\n\r\n${body}`);
}
