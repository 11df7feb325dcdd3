// The envelope: one JSON text frame per WebSocket message, in Phoenix channel shape,
// `{"topic": "client", "event": "init", "payload": {...}, "ref": "7"}`.
//
// 1. Bound the text before parsing: its UTF-8 size (maxBytes) and its nesting (MAX_FRAME_DEPTH),
//    counted by a scan outside strings, so a hostile frame costs at most one pass over its bytes.
// 2. Parse, then read the four fields: topic (1-64 printable ASCII characters), event (likewise),
//    payload (an object), ref (a string of 1-64 characters, or null for a push). Other fields are
//    ignored. The payload itself is the schema's business (schema.ts, validatePayload).
// 3. Encode: the four fields, nothing else.
//
// decodeFrame never throws (STYLE.md 8); a refusal is a value with a stable code. When the ref could
// be read, the refusal carries it, so the portal can answer the request with an error reply.

import {
  EVENT_HEARTBEAT, EVENT_JOIN, EVENT_MAX_CHARS, EVENT_REPLY, MAX_FRAME_BYTES, MAX_FRAME_DEPTH, PHOENIX_TOPIC, REF_MAX_CHARS, TOPIC_MAX_CHARS,
} from "./constants.js";
import type { Reply } from "./schema.js";

/** One Phoenix channel message. */
export interface Frame {
  topic: string;
  event: string;
  /** An object; typed payloads (interfaces of schema.ts) fit without an index signature. */
  payload: object;
  /** Set on requests and copied into their replies; null on pushes. */
  ref: string | null;
}

export type FrameErrorCode = "too_large" | "too_deep" | "json" | "not_object" | "topic" | "event" | "payload" | "ref";

export interface FrameError {
  code: FrameErrorCode;
  message: string;
  /** The frame's ref when it could be read, so the request can still get an error reply. */
  ref?: string;
  topic?: string;
}

export type DecodedFrame = { ok: true; frame: Frame } | { ok: false; error: FrameError };

const PRINTABLE_NAME = /^[\x21-\x7e]+$/;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** UTF-8 length of a JavaScript string, stopping once past `limit`. A lone surrogate counts 3, as TextEncoder writes U+FFFD. */
function utf8LengthOver(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
    if (bytes > limit) return true;
  }
  return false;
}

/** True when arrays and objects nest deeper than `limit` anywhere in the text (brackets inside strings do not count). */
function nestsDeeperThan(text: string, limit: number): boolean {
  // Most frames open a handful of brackets: counted with the native indexOf, at most `limit` of them
  // cannot nest deeper than `limit`, and the scan character by character is left for the rest.
  if (opensAtMost(text, limit)) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > limit) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  return false;
}

/** True when the text holds at most `limit` opening brackets, `{` and `[` together (in strings too). */
function opensAtMost(text: string, limit: number): boolean {
  let opens = 0;
  for (let i = text.indexOf("{"); i >= 0; i = text.indexOf("{", i + 1)) if (++opens > limit) return false;
  for (let i = text.indexOf("["); i >= 0; i = text.indexOf("[", i + 1)) if (++opens > limit) return false;
  return true;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function name(value: unknown, max: number): value is string {
  return typeof value === "string" && value.length <= max && PRINTABLE_NAME.test(value);
}

/** Decodes one text frame; refuses, as a value, anything over `maxBytes` of UTF-8 or not in the envelope's shape. */
export function decodeFrame(text: string, maxBytes: number = MAX_FRAME_BYTES): DecodedFrame {
  if (typeof text !== "string") return { ok: false, error: { code: "json", message: "a frame is text" } };
  if (utf8LengthOver(text, maxBytes)) return { ok: false, error: { code: "too_large", message: `the frame is over ${maxBytes} bytes` } };
  if (nestsDeeperThan(text, MAX_FRAME_DEPTH)) {
    return { ok: false, error: { code: "too_deep", message: `the frame nests deeper than ${MAX_FRAME_DEPTH} levels` } };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, error: { code: "json", message: "the frame is not JSON" } };
  }
  if (!isObject(parsed)) return { ok: false, error: { code: "not_object", message: "a frame is a JSON object {topic, event, payload, ref}" } };
  const { topic, event, payload, ref } = parsed;
  const known: { ref?: string; topic?: string } = {};
  if (name(ref, REF_MAX_CHARS)) known.ref = ref;
  if (name(topic, TOPIC_MAX_CHARS)) known.topic = topic;
  if (ref !== null && known.ref === undefined) {
    return { ok: false, error: { code: "ref", message: `ref must be null or 1-${REF_MAX_CHARS} printable characters`, ...known } };
  }
  if (known.topic === undefined) return { ok: false, error: { code: "topic", message: `topic must be 1-${TOPIC_MAX_CHARS} printable characters`, ...known } };
  if (!name(event, EVENT_MAX_CHARS)) return { ok: false, error: { code: "event", message: `event must be 1-${EVENT_MAX_CHARS} printable characters`, ...known } };
  if (!isObject(payload)) return { ok: false, error: { code: "payload", message: "payload must be an object", ...known } };
  return { ok: true, frame: { topic: known.topic, event, payload, ref: known.ref ?? null } };
}

/** Writes a frame as JSON text: the four envelope fields, in Phoenix's order. */
export function encodeFrame(frame: Frame): string {
  return JSON.stringify({ topic: frame.topic, event: frame.event, payload: frame.payload, ref: frame.ref });
}

/** The reply to `request`: same topic and ref, event `phx_reply`. */
export function replyFrame(request: { topic: string; ref: string | null }, status: Reply["status"], response: object = {}): Frame {
  return { topic: request.topic, event: EVENT_REPLY, payload: { status, response }, ref: request.ref };
}

/** A device's heartbeat; the portal answers it with an ok reply on the same ref. */
export function heartbeatFrame(ref: string): Frame {
  return { topic: PHOENIX_TOPIC, event: EVENT_HEARTBEAT, payload: {}, ref };
}

/** A device's join of its role's topic (`client`, `gateway`, `relay`). */
export function joinFrame(topic: string, ref: string, payload: object = {}): Frame {
  return { topic, event: EVENT_JOIN, payload, ref };
}

/** A push: an event with no ref, which gets no reply. */
export function pushFrame(topic: string, event: string, payload: object): Frame {
  return { topic, event, payload, ref: null };
}
