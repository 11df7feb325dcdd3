// A scripted device for realtime tests: a real WebSocket to the portal, speaking the channel frames by
// hand, so a test reads as the conversation it checks (connect, join, await `init`, request, await
// the push). Pushes are queued until a test takes them; nothing is dropped silently.

import { randomBytes } from "node:crypto";
import { WebSocket } from "ws";
import type { DeviceRole } from "../../../daemons/proto/portal/index.js";

export interface PushedFrame {
  topic: string;
  event: string;
  payload: Record<string, unknown>;
  ref: string | null;
}

/** The answer to an upgrade the portal refused: its status and problem details. */
export class ConnectRefused extends Error {
  constructor(
    readonly status: number,
    readonly problem: Record<string, unknown>,
  ) {
    super(`connect refused with ${status}: ${String(problem.detail ?? "")}`);
  }
}

/** A WireGuard-shaped public key (32 random bytes); the portal checks its form, not the curve here. */
export const randomPublicKey = (): string => randomBytes(32).toString("base64");

export class ScriptedDevice {
  private readonly pushes: PushedFrame[] = [];
  private readonly waiting: { match: (f: PushedFrame) => boolean; resolve: (f: PushedFrame) => void }[] = [];
  private nextRef = 1;
  closedWith: { code: number; reason: string } | undefined;
  private readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(
    readonly role: DeviceRole,
    private readonly ws: WebSocket,
  ) {
    ws.on("message", (data) => {
      const frame = JSON.parse(String(data)) as PushedFrame;
      const at = this.waiting.findIndex((w) => w.match(frame));
      if (at >= 0) this.waiting.splice(at, 1)[0]!.resolve(frame);
      else this.pushes.push(frame);
    });
    this.closed = new Promise((resolve) =>
      ws.on("close", (code, reason) => {
        this.closedWith = { code, reason: String(reason) };
        resolve(this.closedWith);
      }),
    );
  }

  /** Opens the socket; rejects with ConnectRefused when the portal answers the upgrade with a problem. */
  static connect(portalUrl: string, role: DeviceRole, token: string, query: Record<string, string> = {}): Promise<ScriptedDevice> {
    const url = new URL(`${portalUrl.replace(/^http/, "ws")}/${role}/websocket`);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(new ScriptedDevice(role, ws)));
      ws.once("unexpected-response", (_request, response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () => {
          let problem: Record<string, unknown> = {};
          try {
            problem = JSON.parse(body) as Record<string, unknown>;
          } catch {
            problem = { detail: body };
          }
          reject(new ConnectRefused(response.statusCode ?? 0, { ...problem, contentType: response.headers["content-type"] }));
        });
      });
      ws.once("error", reject);
    });
  }

  /** Sends a frame as is (a test may send a broken one). */
  sendRaw(text: string): void {
    this.ws.send(text);
  }

  /** Sends an event and resolves with its phx_reply payload ({status, response}). */
  async request(event: string, payload: object = {}, topic: string = this.role): Promise<{ status: string; response: Record<string, unknown> }> {
    const ref = String(this.nextRef++);
    const reply = this.next((f) => f.event === "phx_reply" && f.ref === ref);
    this.ws.send(JSON.stringify({ topic, event, payload, ref }));
    return (await reply).payload as { status: string; response: Record<string, unknown> };
  }

  join(payload: object = {}): Promise<{ status: string; response: Record<string, unknown> }> {
    return this.request("phx_join", payload);
  }

  heartbeat(): Promise<{ status: string; response: Record<string, unknown> }> {
    return this.request("heartbeat", {}, "phoenix");
  }

  /** The next frame matching `match` (an event name or a predicate), waiting up to timeoutMs. */
  next(match: string | ((f: PushedFrame) => boolean), timeoutMs = 10_000): Promise<PushedFrame> {
    const test = typeof match === "string" ? (f: PushedFrame) => f.event === match : match;
    const at = this.pushes.findIndex(test);
    if (at >= 0) return Promise.resolve(this.pushes.splice(at, 1)[0]!);
    return new Promise((resolve, reject) => {
      const waiter = {
        match: test,
        resolve: (f: PushedFrame) => {
          clearTimeout(timer);
          resolve(f);
        },
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        reject(new Error(`${this.role}: no ${typeof match === "string" ? match : "matching frame"} within ${timeoutMs} ms; queued: ${this.pushes.map((p) => p.event).join(", ") || "none"}`));
      }, timeoutMs);
      this.waiting.push(waiter);
    });
  }

  /** Frames received and not yet taken. */
  pending(): PushedFrame[] {
    return [...this.pushes];
  }

  close(): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    return this.closed;
  }

  /** Resolves when the portal closes the socket. */
  whenClosed(): Promise<{ code: number; reason: string }> {
    return this.closed;
  }
}
