// Batched WireGuard transport data (message type 4), sealed and opened in place in the packet arena.
//
// A batch is an array of 16-byte descriptors { offset, length, session, status } (u32 each) that
// point into the arena. One call handles the whole batch; a bad packet never traps, it gets a status
// and the batch goes on.
//
// Seal, per descriptor (plaintext at offset + 16, `length` bytes; `session` is the slot):
//   1. the slot must hold a live session with counter below REJECT_AFTER_MESSAGES;
//   2. zero-pad the plaintext to a multiple of 16 and check it fits the arena and the message limit;
//   3. write the header (type, receiver, counter), encrypt in place, append the tag;
//   4. length := header + padded ciphertext + tag.
// Open, per descriptor (packet at offset, `length` bytes):
//   1. length and type checks; find the session by receiver index;
//   2. replay check of the counter (no state change yet);
//   3. verify the tag and decrypt in place (plaintext at offset + 16);
//   4. commit the counter to the window; session := slot, length := plaintext length.

import {
  MAX_CONTENT_SIZE, MAX_MESSAGE_SIZE, MESSAGE_PADDING_MULTIPLE,
  MESSAGE_TRANSPORT_OFFSET_CONTENT, MESSAGE_TRANSPORT_OFFSET_COUNTER, MESSAGE_TRANSPORT_OFFSET_RECEIVER,
  MESSAGE_TRANSPORT_OFFSET_TYPE, MESSAGE_TRANSPORT_SIZE, MESSAGE_TRANSPORT_TYPE,
  REJECT_AFTER_MESSAGES, STATUS_AUTH_FAILED, STATUS_BAD_TYPE, STATUS_COUNTER_EXHAUSTED,
  STATUS_NO_SESSION, STATUS_OK, STATUS_OUT_OF_BOUNDS, STATUS_TOO_LARGE, STATUS_TOO_SHORT,
} from "./constants";
import { aeadOpen, aeadSeal } from "./aead";
import { replayCheck, replayUpdate } from "./replay";
import {
  findSession, sessionLive, sessionPtr, SESSION_RECV_KEY, SESSION_REMOTE_INDEX, SESSION_REPLAY,
  SESSION_SEND_COUNTER, SESSION_SEND_KEY,
} from "./sessions";

export const DESC_OFFSET: usize = 0;
export const DESC_LENGTH: usize = 4;
export const DESC_SESSION: usize = 8;
export const DESC_STATUS: usize = 12;
export const DESC_SIZE: usize = 16;

let arena: usize = 0;
let arenaSize: usize = 0;
let descriptors: usize = 0;
let maxBatch: u32 = 0;

export function setTransportMemory(arenaPtr: usize, arenaBytes: usize, descPtr: usize, batch: u32): void {
  arena = arenaPtr;
  arenaSize = arenaBytes;
  descriptors = descPtr;
  maxBatch = batch;
}

@inline function fits(offset: usize, len: usize): bool {
  return offset <= arenaSize && len <= arenaSize - offset;
}

function sealOne(d: usize): u32 {
  const slot = load<u32>(d, DESC_SESSION);
  if (!sessionLive(slot)) return STATUS_NO_SESSION;
  const s = sessionPtr(slot);
  const counter = load<u64>(s, SESSION_SEND_COUNTER);
  if (counter >= REJECT_AFTER_MESSAGES) return STATUS_COUNTER_EXHAUSTED;

  const offset = <usize>load<u32>(d, DESC_OFFSET);
  const len = <usize>load<u32>(d, DESC_LENGTH);
  const padded = (len + (MESSAGE_PADDING_MULTIPLE - 1)) & ~(<usize>MESSAGE_PADDING_MULTIPLE - 1);
  if (padded > MAX_CONTENT_SIZE) return STATUS_TOO_LARGE;
  const total = padded + MESSAGE_TRANSPORT_SIZE;
  if (!fits(offset, total)) return STATUS_OUT_OF_BOUNDS;

  store<u64>(s, counter + 1, SESSION_SEND_COUNTER);
  const p = arena + offset;
  const content = p + MESSAGE_TRANSPORT_OFFSET_CONTENT;
  memory.fill(content + len, 0, padded - len);
  store<u32>(p, MESSAGE_TRANSPORT_TYPE, MESSAGE_TRANSPORT_OFFSET_TYPE);
  store<u32>(p, load<u32>(s, SESSION_REMOTE_INDEX), MESSAGE_TRANSPORT_OFFSET_RECEIVER);
  store<u64>(p, counter, MESSAGE_TRANSPORT_OFFSET_COUNTER);
  aeadSeal(s + SESSION_SEND_KEY, 0, <u32>counter, <u32>(counter >>> 32), 0, 0, content, padded, content + padded);
  store<u32>(d, <u32>total, DESC_LENGTH);
  return STATUS_OK;
}

function openOne(d: usize): u32 {
  const offset = <usize>load<u32>(d, DESC_OFFSET);
  const len = <usize>load<u32>(d, DESC_LENGTH);
  if (len < MESSAGE_TRANSPORT_SIZE) return STATUS_TOO_SHORT;
  if (len > MAX_MESSAGE_SIZE) return STATUS_TOO_LARGE;
  if (!fits(offset, len)) return STATUS_OUT_OF_BOUNDS;
  const p = arena + offset;
  if (load<u32>(p, MESSAGE_TRANSPORT_OFFSET_TYPE) != MESSAGE_TRANSPORT_TYPE) return STATUS_BAD_TYPE;
  const slot = findSession(load<u32>(p, MESSAGE_TRANSPORT_OFFSET_RECEIVER));
  if (slot < 0) return STATUS_NO_SESSION;
  const s = sessionPtr(<u32>slot);
  const counter = load<u64>(p, MESSAGE_TRANSPORT_OFFSET_COUNTER);
  const replay = replayCheck(s + SESSION_REPLAY, counter);
  if (replay != STATUS_OK) return replay;

  const content = p + MESSAGE_TRANSPORT_OFFSET_CONTENT;
  const ctLen = len - MESSAGE_TRANSPORT_SIZE;
  const ok = aeadOpen(s + SESSION_RECV_KEY, 0, <u32>counter, <u32>(counter >>> 32), 0, 0, content, ctLen, content + ctLen);
  if (!ok) return STATUS_AUTH_FAILED;
  replayUpdate(s + SESSION_REPLAY, counter);
  store<u32>(d, <u32>slot, DESC_SESSION);
  store<u32>(d, <u32>ctLen, DESC_LENGTH);
  return STATUS_OK;
}

/**
 * Seals count descriptors; returns how many succeeded, or -1 if count exceeds the batch size. A
 * descriptor that arrives with a status already set (routing found no peer for it) stays dropped:
 * it is not sealed and spends no counter.
 */
export function transportSeal(count: u32): i32 {
  if (count > maxBatch) return -1;
  let ok: i32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const d = descriptors + <usize>i * DESC_SIZE;
    if (load<u32>(d, DESC_STATUS) != STATUS_OK) continue;
    const status = sealOne(d);
    store<u32>(d, status, DESC_STATUS);
    if (status == STATUS_OK) ok++;
  }
  return ok;
}

/** Opens count descriptors; returns how many succeeded, or -1 if count exceeds the batch size. */
export function transportOpen(count: u32): i32 {
  if (count > maxBatch) return -1;
  let ok: i32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const d = descriptors + <usize>i * DESC_SIZE;
    const status = openOne(d);
    store<u32>(d, status, DESC_STATUS);
    if (status == STATUS_OK) ok++;
  }
  return ok;
}
