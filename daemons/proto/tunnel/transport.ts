// WireGuard transport data messages (whitepaper §5.4.6) in plain TypeScript: the slow oracle of
// the engine's batched transport, and what the tunnel node seals and opens with in tests and in
// the simulator. One TransportSessions per device holds every installed session by local index.
//
// The pipeline, in the order of this file:
// 1. Sessions: install from a PeerEvent "install" (keys, both indices), drop on "drop"; a session
//    belongs to the peer the device says.
// 2. Seal: the next counter of the session (never reused; none past REJECT_AFTER_MESSAGES), the
//    packet zero-padded to MESSAGE_PADDING_MULTIPLE, ChaCha20-Poly1305 with the counter as nonce,
//    header: type 4, receiver = the peer's index, counter.
// 3. Open: length, type and reserved bytes; the receiver must be an installed local index; the
//    counter must not be behind the replay window; the AEAD must verify; only then is the counter
//    marked seen (so forgeries cannot move the window). The plaintext's padding is cut by its IP
//    header's length; an empty plaintext is a keepalive.
//
// Nothing here throws on network input: open returns a typed result.

import type { TransportKeys } from "../wireguard/noise.js";
import { aeadOpen, aeadSeal } from "../wireguard/crypto.js";
import {
  MESSAGE_PADDING_MULTIPLE, MESSAGE_TRANSPORT_HEADER_SIZE, MESSAGE_TRANSPORT_MIN_SIZE, MESSAGE_TRANSPORT_OFFSET_CONTENT,
  MESSAGE_TRANSPORT_OFFSET_COUNTER, MESSAGE_TRANSPORT_OFFSET_RECEIVER, MESSAGE_TRANSPORT_OFFSET_TYPE, MESSAGE_TRANSPORT_TYPE,
  REJECT_AFTER_MESSAGES,
} from "./constants.js";
import { ReplayWindow } from "./replay-window.js";

/** Why open refused a datagram. */
export type OpenError = "malformed" | "unknown-receiver" | "replayed" | "authentication";

/**
 * ChaCha20-Poly1305 with WireGuard's counter nonce and no associated data, as the sessions use it:
 * plain TypeScript (@noble) unless a driver gives a faster one (daemons/io/aead-node.ts).
 */
export interface TransportAead {
  /** The ciphertext followed by the 16-byte tag. */
  seal(key: Uint8Array, counter: bigint, plaintext: Uint8Array): Uint8Array;
  /** The plaintext, or null when the tag does not verify. */
  open(key: Uint8Array, counter: bigint, sealed: Uint8Array): Uint8Array | null;
  /**
   * Optional, the same seal without intermediate arrays: plaintext zero-padded to paddedLength,
   * ciphertext ‖ tag written into out at `at`.
   */
  sealInto?(key: Uint8Array, counter: bigint, plaintext: Uint8Array, paddedLength: number, out: Uint8Array, at: number): void;
}

/** The @noble AEAD, the default. */
export const nobleTransportAead: TransportAead = {
  seal: (key, counter, plaintext) => aeadSeal(key, counter, plaintext, EMPTY),
  open: (key, counter, sealed) => aeadOpen(key, counter, sealed, EMPTY),
};

/** The result of open: the packet (empty for a keepalive) and the session it came on, or why not. */
export type Opened =
  | { ok: true; peer: number; localIndex: number; counter: bigint; packet: Uint8Array }
  | { ok: false; reason: OpenError };

interface Session {
  peer: number;
  keys: TransportKeys;
  sendCounter: bigint;
  window: ReplayWindow;
}

const EMPTY = new Uint8Array(0);
const TAG_SIZE = 16;

/** Whether bytes look like a transport data message (type 4, reserved bytes zero, long enough). */
export function isTransportMessage(bytes: Uint8Array): boolean {
  return bytes.length >= MESSAGE_TRANSPORT_MIN_SIZE && u32(bytes, MESSAGE_TRANSPORT_OFFSET_TYPE) === MESSAGE_TRANSPORT_TYPE;
}

/** The installed transport sessions of one WireGuard device, sealing and opening type-4 messages. */
export class TransportSessions {
  /** Datagrams open refused, one counter per reason. */
  readonly dropped: Record<OpenError, number> = { malformed: 0, "unknown-receiver": 0, replayed: 0, authentication: 0 };
  private readonly sessions = new Map<number, Session>();

  constructor(private readonly aead: TransportAead = nobleTransportAead) {}

  // --- 1. Sessions ---

  /** Installs a session for a peer (from a PeerEvent "install"); a session already at that index is replaced. */
  install(peer: number, keys: TransportKeys): void {
    this.sessions.set(keys.localIndex, { peer, keys, sendCounter: 0n, window: new ReplayWindow() });
  }

  /** Drops a session (a PeerEvent "drop"); its keys are wiped. */
  drop(localIndex: number): void {
    const session = this.sessions.get(localIndex);
    if (session === undefined) return;
    session.keys.sendKey.fill(0);
    session.keys.recvKey.fill(0);
    this.sessions.delete(localIndex);
  }

  /** Drops every session of a peer (it was removed). */
  dropPeer(peer: number): void {
    for (const [index, session] of this.sessions) if (session.peer === peer) this.drop(index);
  }

  has(localIndex: number): boolean {
    return this.sessions.has(localIndex);
  }

  get size(): number {
    return this.sessions.size;
  }

  // --- 2. Seal ---

  /** A transport message carrying packet (empty: a keepalive) on the session, or undefined if there is none or it is spent. */
  seal(localIndex: number, packet: Uint8Array): Uint8Array | undefined {
    const session = this.sessions.get(localIndex);
    if (session === undefined || session.sendCounter >= REJECT_AFTER_MESSAGES) return undefined;
    const counter = session.sendCounter++;
    const paddedLength = Math.ceil(packet.length / MESSAGE_PADDING_MULTIPLE) * MESSAGE_PADDING_MULTIPLE;
    const out = new Uint8Array(MESSAGE_TRANSPORT_HEADER_SIZE + paddedLength + TAG_SIZE);
    const view = new DataView(out.buffer);
    view.setUint32(MESSAGE_TRANSPORT_OFFSET_TYPE, MESSAGE_TRANSPORT_TYPE, true);
    view.setUint32(MESSAGE_TRANSPORT_OFFSET_RECEIVER, session.keys.remoteIndex, true);
    view.setBigUint64(MESSAGE_TRANSPORT_OFFSET_COUNTER, counter, true);
    if (this.aead.sealInto !== undefined) {
      this.aead.sealInto(session.keys.sendKey, counter, packet, paddedLength, out, MESSAGE_TRANSPORT_OFFSET_CONTENT);
      return out;
    }
    const padded = new Uint8Array(paddedLength);
    padded.set(packet);
    out.set(this.aead.seal(session.keys.sendKey, counter, padded), MESSAGE_TRANSPORT_OFFSET_CONTENT);
    return out;
  }

  // --- 3. Open ---

  /** Opens a transport message; never throws. */
  open(bytes: Uint8Array): Opened {
    if (!isTransportMessage(bytes) || (bytes.length - MESSAGE_TRANSPORT_HEADER_SIZE) % MESSAGE_PADDING_MULTIPLE !== 0) return this.fail("malformed");
    const session = this.sessions.get(u32(bytes, MESSAGE_TRANSPORT_OFFSET_RECEIVER));
    if (session === undefined) return this.fail("unknown-receiver");
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const counter = view.getBigUint64(MESSAGE_TRANSPORT_OFFSET_COUNTER, true);
    // A cheap pre-check: a counter past the limit or far behind the window is not worth an AEAD.
    if (counter >= REJECT_AFTER_MESSAGES || !session.window.couldAccept(counter)) return this.fail("replayed");
    const plain = this.aead.open(session.keys.recvKey, counter, bytes.subarray(MESSAGE_TRANSPORT_OFFSET_CONTENT));
    if (plain === null) return this.fail("authentication");
    if (!session.window.accept(counter)) return this.fail("replayed");
    return { ok: true, peer: session.peer, localIndex: session.keys.localIndex, counter, packet: unpad(plain) };
  }

  private fail(reason: OpenError): Opened {
    this.dropped[reason]++;
    return { ok: false, reason };
  }
}

/** The IP packet without its padding: the length its header states, if it fits; else all of it. */
function unpad(plain: Uint8Array): Uint8Array {
  if (plain.length === 0) return plain;
  const version = plain[0]! >> 4;
  let length = plain.length;
  if (version === 4 && plain.length >= 4) length = (plain[2]! << 8) | plain[3]!;
  else if (version === 6 && plain.length >= 6) length = 40 + ((plain[4]! << 8) | plain[5]!);
  return length > 0 && length <= plain.length ? plain.subarray(0, length) : plain;
}

function u32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
}
