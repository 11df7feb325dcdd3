// Errors the binding raises for misuse at the edge: a wrong key or nonce length, an oversized input,
// a full batch. Packets themselves never throw; their failures are TransportStatus values.

import { NO_PEER } from "./constants.js";

/** An input the engine refuses, with a stable code and a message that names the argument. */
export class EngineError extends Error {
  override readonly name = "EngineError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Checks that value is a Uint8Array, of exactly `size` bytes when size is given. */
export function checkBytes(op: string, what: string, value: unknown, size?: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new EngineError("BAD_INPUT", `${op}: ${what} must be a Uint8Array, got ${value === null ? "null" : typeof value}`);
  }
  if (size !== undefined && value.length !== size) {
    const code = what === "key" ? "BAD_KEY" : what === "nonce" ? "BAD_NONCE" : "BAD_LENGTH";
    throw new EngineError(code, `${op}: ${what} must be ${size} bytes, got ${value.length}`);
  }
}

/** Checks that value is an integer in [min, max]. */
export function checkInteger(what: string, value: unknown, min: number, max: number): asserts value is number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new EngineError("BAD_ARGUMENT", `${what} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
}

/** Checks that value is a peer id: an integer from 0 to NO_PEER - 1 (0xfffffffe). */
export function checkPeer(op: string, peer: unknown): asserts peer is number {
  if (typeof peer !== "number" || !Number.isInteger(peer) || peer < 0 || peer >= NO_PEER) {
    throw new EngineError("BAD_PEER", `${op}: peer must be an integer from 0 to ${NO_PEER - 1}, got ${String(peer)}`);
  }
}
