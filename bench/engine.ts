// The `engine` suite: WireGuard transport (ChaCha20-Poly1305) and BLAKE2s in our WebAssembly engine,
// against node:crypto, @noble/ciphers, libsodium-wrappers and @noble/hashes in the same run.
//
//   1. set up one engine, a sealing session, and a peer/receiver session pair for opening;
//   2. check, before timing anything, that every implementation computes the same bytes: ours'
//      sealed packet against each anchor's output for the same key, nonce and padded payload, our
//      opened plaintext against the original, our BLAKE2s against @noble/hashes;
//   3. build the cases for each (operation, size) group, ours and the anchors side by side;
//   4. measure each group with interleaved samples (bench/harness.ts);
//   5. compute ratios ours ÷ anchor and check them against the issue's targets.
//
// Every implementation does a WireGuard daemon's work per packet: the payload padded to a multiple of
// 16, a nonce built from the packet counter, one AEAD call. Our side allocates nothing per packet
// beyond the views the binding's reserve*() calls return.

import { createCipheriv, createDecipheriv, createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { blake2s } from "@noble/hashes/blake2.js";
import sodium from "libsodium-wrappers";
import {
  Engine, MESSAGE_PADDING_MULTIPLE, MESSAGE_TRANSPORT_HEADER_SIZE, MESSAGE_TRANSPORT_OFFSET_COUNTER,
  MESSAGE_TRANSPORT_OFFSET_RECEIVER, MESSAGE_TRANSPORT_TYPE, NONCE_SIZE, TAG_SIZE, TransportStatus, wasmPath,
} from "../daemons/engine/index.js";
import type { SessionKeys } from "../daemons/engine/index.js";
import {
  checkTarget, findFigure, formatRate, formatRatio, formatSize, formatSpread, formatTarget, loadWarning,
  measureGroup, ratioOf, repoRoot, startRun,
} from "./harness.js";
import type {
  BenchCase, BenchSuite, Figure, MachineInfo, Ratio, ReportTable, SuiteOptions, SuiteReport, TargetResult,
} from "./harness.js";

/** 64 B (a small packet), 1420 B (one WireGuard packet at MTU 1500), 16 KiB (a large message). */
export const PACKET_SIZES = [64, 1420] as const;
export const LARGE_SIZE = 16 * 1024;
export const SIZES = [...PACKET_SIZES, LARGE_SIZE] as const;
/** Packets per engine call at packet sizes; 16 KiB is not a packet size, so one message per call. */
export const PACKET_BATCH = 64;
export const LARGE_BATCH = 1;

/** Distinct pre-sealed packets per open pass; the receiver is reinstalled between passes. */
const OPEN_SET: Record<number, number> = { 64: 256, 1420: 128, [LARGE_SIZE]: 16 };

export const IMPL = {
  oursBatch: "ours-batch",
  oursOneShot: "ours-oneshot",
  node: "node:crypto",
  noble: "@noble/ciphers",
  sodium: "libsodium-wrappers",
  oursHash: "ours",
  nobleHash: "@noble/hashes",
} as const;

const AEAD_ANCHORS = [IMPL.node, IMPL.noble, IMPL.sodium] as const;
const AEAD_IMPLS = [IMPL.oursBatch, IMPL.oursOneShot, ...AEAD_ANCHORS] as const;

/** Floors from the issue: ours (batched) ÷ anchor, sealing. */
export const TARGETS: readonly { size: number; anchor: string; min: number }[] = [
  { size: 1420, anchor: IMPL.node, min: 3 },
  { size: 1420, anchor: IMPL.sodium, min: 1.5 },
  { size: 1420, anchor: IMPL.noble, min: 6 },
  { size: LARGE_SIZE, anchor: IMPL.node, min: 0.5 },
];

export const caseId = (op: string, size: number, impl: string): string => `${op}/${size}/${impl}`;

const padded = (len: number): number => (len + MESSAGE_PADDING_MULTIPLE - 1) & ~(MESSAGE_PADDING_MULTIPLE - 1);
const batchFor = (size: number): number => (size === LARGE_SIZE ? LARGE_BATCH : PACKET_BATCH);

/** Deterministic filler (xorshift32), so runs encrypt the same bytes. */
function filler(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** WireGuard's nonce: 4 zero bytes, then the 64-bit counter little-endian (whitepaper §5.4.6). */
function writeNonce(nonce: Uint8Array, counter: number): void {
  // Byte stores rather than a DataView, so writing a nonce per packet allocates nothing.
  const lo = counter >>> 0;
  const hi = Math.floor(counter / 2 ** 32) >>> 0;
  nonce[0] = nonce[1] = nonce[2] = nonce[3] = 0;
  nonce[4] = lo & 0xff;
  nonce[5] = (lo >>> 8) & 0xff;
  nonce[6] = (lo >>> 16) & 0xff;
  nonce[7] = lo >>> 24;
  nonce[8] = hi & 0xff;
  nonce[9] = (hi >>> 8) & 0xff;
  nonce[10] = (hi >>> 16) & 0xff;
  nonce[11] = hi >>> 24;
}

function nonceFor(counter: number): Uint8Array {
  const nonce = new Uint8Array(NONCE_SIZE);
  writeNonce(nonce, counter);
  return nonce;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

function fail(message: string): never {
  throw new Error(`bench engine: ${message}`);
}

function nodeSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_SIZE });
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** Packets sealed by the peer session, stored back to back, with the views each API wants. */
interface OpenSet {
  /** Whole wire packets: header, ciphertext, tag. */
  packets: Uint8Array[];
  /** Ciphertext ‖ tag, for one-shot APIs. */
  sealed: Uint8Array[];
  ciphertexts: Uint8Array[];
  tags: Uint8Array[];
  nonces: Uint8Array[];
}

function viewsOf(store: Uint8Array, packetLen: number, count: number, firstCounter: bigint): OpenSet {
  const set: OpenSet = { packets: [], sealed: [], ciphertexts: [], tags: [], nonces: [] };
  for (let j = 0; j < count; j++) {
    const packet = store.subarray(j * packetLen, (j + 1) * packetLen);
    set.packets.push(packet);
    set.sealed.push(packet.subarray(MESSAGE_TRANSPORT_HEADER_SIZE));
    set.ciphertexts.push(packet.subarray(MESSAGE_TRANSPORT_HEADER_SIZE, packetLen - TAG_SIZE));
    set.tags.push(packet.subarray(packetLen - TAG_SIZE));
    set.nonces.push(nonceFor(Number(firstCounter) + j));
  }
  return set;
}

/** The engine and the sessions every case shares. */
class Rig {
  readonly engine: Engine;
  readonly sealKeys: SessionKeys;
  readonly sealSlot: number;
  readonly openKeys: SessionKeys;
  readonly peerSlot: number;
  recvSlot: number;

  constructor(build: "release" | "debug") {
    this.engine = Engine.create({ build });
    const sealKey = filler(32, 0x5ea1);
    const openKey = filler(32, 0x0be7);
    const unusedKey = filler(32, 0x7e57);
    this.sealKeys = { localIndex: 1, remoteIndex: 2, sendKey: sealKey, recvKey: unusedKey };
    // Peer and receiver are the two ends of one keypair: the peer's send key is the receiver's recv key.
    const peerKeys: SessionKeys = { localIndex: 3, remoteIndex: 4, sendKey: openKey, recvKey: unusedKey };
    this.openKeys = { localIndex: 4, remoteIndex: 3, sendKey: unusedKey, recvKey: openKey };
    this.sealSlot = this.engine.sessions.install(this.sealKeys);
    this.peerSlot = this.engine.sessions.install(peerKeys);
    this.recvSlot = this.engine.sessions.install(this.openKeys);
  }

  /** A fresh replay window for the receiver (drop + install), as after a rekey. */
  reinstallReceiver(): void {
    this.engine.sessions.drop(this.recvSlot);
    this.recvSlot = this.engine.sessions.install(this.openKeys);
  }

  /** Seals count copies of plaintext with the peer session and returns them as an OpenSet. */
  sealOpenSet(plaintext: Uint8Array, count: number): OpenSet {
    const { batch, sessions } = this.engine;
    const packetLen = padded(plaintext.length) + MESSAGE_TRANSPORT_HEADER_SIZE + TAG_SIZE;
    const store = new Uint8Array(packetLen * count);
    const firstCounter = sessions.sendCounter(this.peerSlot);
    for (let done = 0; done < count; ) {
      const n = Math.min(count - done, PACKET_BATCH);
      batch.reset();
      for (let k = 0; k < n; k++) batch.reservePlaintext(this.peerSlot, plaintext.length).set(plaintext);
      if (batch.seal() !== n) fail(`peer could not seal ${n} packets of ${plaintext.length} B`);
      for (let k = 0; k < n; k++) store.set(batch.packet(k), (done + k) * packetLen);
      done += n;
    }
    return viewsOf(store, packetLen, count, firstCounter);
  }
}

// --- 2. Agreement checks, before any timing ---

function checkSealAgreement(rig: Rig, size: number, plaintext: Uint8Array): void {
  const { engine } = rig;
  const { batch, sessions } = engine;
  const payload = new Uint8Array(padded(size));
  payload.set(plaintext);
  const counter = sessions.sendCounter(rig.sealSlot);
  batch.reset();
  batch.reservePlaintext(rig.sealSlot, size).set(plaintext);
  if (batch.seal() !== 1 || batch.status(0) !== TransportStatus.Ok) fail(`seal of ${size} B failed: status ${batch.status(0)}`);
  const packet = batch.packet(0);
  const header = new DataView(packet.buffer, packet.byteOffset, MESSAGE_TRANSPORT_HEADER_SIZE);
  if (
    header.getUint32(0, true) !== MESSAGE_TRANSPORT_TYPE ||
    header.getUint32(MESSAGE_TRANSPORT_OFFSET_RECEIVER, true) !== rig.sealKeys.remoteIndex ||
    header.getBigUint64(MESSAGE_TRANSPORT_OFFSET_COUNTER, true) !== counter
  ) {
    fail(`sealed ${size} B packet has a wrong header`);
  }
  const body = packet.subarray(MESSAGE_TRANSPORT_HEADER_SIZE);
  const key = rig.sealKeys.sendKey;
  const nonce = nonceFor(Number(counter));
  const outputs: [string, Uint8Array][] = [
    [IMPL.node, nodeSeal(key, nonce, payload)],
    [IMPL.noble, chacha20poly1305(key, nonce).encrypt(payload)],
    [IMPL.sodium, sodium.crypto_aead_chacha20poly1305_ietf_encrypt(payload, null, null, nonce, key)],
    [IMPL.oursOneShot, engine.chacha20Poly1305Seal(key, nonce, payload)],
  ];
  for (const [impl, out] of outputs) {
    if (!sameBytes(out, body)) fail(`${impl} and the engine's batch seal disagree at ${size} B`);
  }
}

function checkOpenAgreement(rig: Rig, size: number, plaintext: Uint8Array, set: OpenSet): void {
  const { batch } = rig.engine;
  const n = batchFor(size);
  batch.reset();
  for (let k = 0; k < n; k++) batch.reservePacket(set.packets[k]!.length).set(set.packets[k]!);
  const ok = batch.open();
  if (ok !== n) fail(`open of ${size} B returned ${ok}/${n} Ok (first status ${TransportStatus[batch.status(0)]})`);
  const opened = batch.plaintext(0);
  const expected = new Uint8Array(padded(size));
  expected.set(plaintext);
  if (!sameBytes(opened, expected)) fail(`open of ${size} B did not return the sealed plaintext`);
  rig.reinstallReceiver();
}

function checkHashAgreement(rig: Rig, data: Uint8Array): void {
  if (!sameBytes(rig.engine.blake2s(data), blake2s(data))) fail(`BLAKE2s of ${data.length} B disagrees with @noble/hashes`);
}

// --- 3. Cases ---

function sealCases(rig: Rig, size: number, plaintext: Uint8Array): BenchCase[] {
  const { engine } = rig;
  const { batch } = engine;
  const slot = rig.sealSlot;
  const n = batchFor(size);
  const key = rig.sealKeys.sendKey;
  const payload = new Uint8Array(padded(size));
  payload.set(plaintext);
  const nonce = new Uint8Array(NONCE_SIZE);
  let counter = 0;
  const base = { op: "seal", size, ops: 1, bytes: size };
  return [
    {
      ...base,
      id: caseId("seal", size, IMPL.oursBatch),
      impl: IMPL.oursBatch,
      ops: n,
      bytes: n * size,
      detail: `engine.batch: reset, reservePlaintextOffset ×${n}, seal() once`,
      run(iterations) {
        for (let it = 0; it < iterations; it++) {
          batch.reset();
          for (let k = 0; k < n; k++) batch.reservePlaintextOffset(slot, size);
          if (batch.seal() !== n) fail(`batch seal at ${size} B did not seal all ${n} packets`);
        }
      },
    },
    {
      ...base,
      id: caseId("seal", size, IMPL.oursOneShot),
      impl: IMPL.oursOneShot,
      detail: "engine.chacha20Poly1305Seal per message",
      run(iterations) {
        for (let it = 0; it < iterations; it++) {
          writeNonce(nonce, counter++);
          engine.chacha20Poly1305Seal(key, nonce, payload);
        }
      },
    },
    {
      ...base,
      id: caseId("seal", size, IMPL.node),
      impl: IMPL.node,
      detail: "createCipheriv + update + final + getAuthTag per packet",
      run(iterations) {
        for (let it = 0; it < iterations; it++) {
          writeNonce(nonce, counter++);
          const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_SIZE });
          cipher.update(payload);
          cipher.final();
          cipher.getAuthTag();
        }
      },
    },
    {
      ...base,
      id: caseId("seal", size, IMPL.noble),
      impl: IMPL.noble,
      detail: "chacha20poly1305(key, nonce).encrypt per packet",
      run(iterations) {
        for (let it = 0; it < iterations; it++) {
          writeNonce(nonce, counter++);
          chacha20poly1305(key, nonce).encrypt(payload);
        }
      },
    },
    {
      ...base,
      id: caseId("seal", size, IMPL.sodium),
      impl: IMPL.sodium,
      detail: "crypto_aead_chacha20poly1305_ietf_encrypt per packet",
      run(iterations) {
        for (let it = 0; it < iterations; it++) {
          writeNonce(nonce, counter++);
          sodium.crypto_aead_chacha20poly1305_ietf_encrypt(payload, null, null, nonce, key);
        }
      },
    },
  ];
}

function openCases(rig: Rig, size: number, set: OpenSet): BenchCase[] {
  const { engine } = rig;
  const { batch } = engine;
  const { memory } = batch;
  const n = batchFor(size);
  const key = rig.openKeys.recvKey;
  const count = set.packets.length;
  const { packets, sealed, ciphertexts, tags, nonces } = set;
  // Starting at the end makes the first batch reinstall the receiver, whatever ran before.
  let next = count;
  let j = 0;
  const base = { op: "open", size, ops: 1, bytes: size };
  return [
    {
      ...base,
      id: caseId("open", size, IMPL.oursBatch),
      impl: IMPL.oursBatch,
      ops: n,
      bytes: n * size,
      detail: `engine.batch: reset, reservePacketOffset + copy ×${n}, open() once; receiver reinstalled every ${count} packets`,
      run(iterations) {
        for (let it = 0; it < iterations; it++) {
          if (next === count) {
            rig.reinstallReceiver();
            next = 0;
          }
          batch.reset();
          for (let k = 0; k < n; k++) {
            const packet = packets[next++]!;
            memory.set(packet, batch.reservePacketOffset(packet.length));
          }
          if (batch.open() !== n) {
            fail(`batch open at ${size} B did not authenticate all ${n} packets (status ${TransportStatus[batch.status(0)]})`);
          }
        }
      },
    },
    {
      ...base,
      id: caseId("open", size, IMPL.oursOneShot),
      impl: IMPL.oursOneShot,
      detail: "engine.chacha20Poly1305Open per message",
      run(iterations) {
        for (let it = 0; it < iterations; it++) {
          const i = j++ % count;
          if (engine.chacha20Poly1305Open(key, nonces[i]!, sealed[i]!) === null) fail(`one-shot open at ${size} B failed`);
        }
      },
    },
    {
      ...base,
      id: caseId("open", size, IMPL.node),
      impl: IMPL.node,
      detail: "createDecipheriv + setAuthTag + update + final per packet",
      run(iterations) {
        for (let it = 0; it < iterations; it++) {
          const i = j++ % count;
          const decipher = createDecipheriv("chacha20-poly1305", key, nonces[i]!, { authTagLength: TAG_SIZE });
          decipher.setAuthTag(tags[i]!);
          decipher.update(ciphertexts[i]!);
          decipher.final();
        }
      },
    },
    {
      ...base,
      id: caseId("open", size, IMPL.noble),
      impl: IMPL.noble,
      detail: "chacha20poly1305(key, nonce).decrypt per packet",
      run(iterations) {
        for (let it = 0; it < iterations; it++) {
          const i = j++ % count;
          chacha20poly1305(key, nonces[i]!).decrypt(sealed[i]!);
        }
      },
    },
    {
      ...base,
      id: caseId("open", size, IMPL.sodium),
      impl: IMPL.sodium,
      detail: "crypto_aead_chacha20poly1305_ietf_decrypt per packet",
      run(iterations) {
        for (let it = 0; it < iterations; it++) {
          const i = j++ % count;
          sodium.crypto_aead_chacha20poly1305_ietf_decrypt(null, sealed[i]!, null, nonces[i]!, key);
        }
      },
    },
  ];
}

function hashCases(rig: Rig, data: Uint8Array): BenchCase[] {
  const { engine } = rig;
  const size = data.length;
  const base = { op: "blake2s", size, ops: 1, bytes: size };
  return [
    {
      ...base,
      id: caseId("blake2s", size, IMPL.oursHash),
      impl: IMPL.oursHash,
      detail: "engine.blake2s(data)",
      run(iterations) {
        for (let it = 0; it < iterations; it++) engine.blake2s(data);
      },
    },
    {
      ...base,
      id: caseId("blake2s", size, IMPL.nobleHash),
      impl: IMPL.nobleHash,
      detail: "blake2s(data)",
      run(iterations) {
        for (let it = 0; it < iterations; it++) blake2s(data);
      },
    },
  ];
}

/** Costs of the binding itself, apart from the crypto: what a driver pays per call and per packet. */
function overheadCases(rig: Rig, packet1420: Uint8Array): BenchCase[] {
  const { batch } = rig.engine;
  const slot = rig.sealSlot;
  const base = { op: "call", bytes: 0 };
  return [
    {
      ...base,
      id: "call/0/empty-seal",
      impl: "reset + seal() of an empty batch",
      size: 0,
      ops: 1,
      detail: "one JS→WebAssembly crossing, no packet",
      run(iterations) {
        for (let it = 0; it < iterations; it++) {
          batch.reset();
          if (batch.seal() !== 0) fail("empty batch sealed something");
        }
      },
    },
    {
      ...base,
      id: "call/64/reserve-plaintext",
      impl: "reservePlaintextOffset (no seal)",
      size: 64,
      ops: PACKET_BATCH,
      detail: `per packet; reset + ${PACKET_BATCH} reservations`,
      run(iterations) {
        for (let it = 0; it < iterations; it++) {
          batch.reset();
          for (let k = 0; k < PACKET_BATCH; k++) batch.reservePlaintextOffset(slot, 64);
        }
      },
    },
    {
      ...base,
      id: "call/1420/reserve-packet-copy",
      impl: "reservePacketOffset + copy 1456 B (no open)",
      size: packet1420.length,
      ops: PACKET_BATCH,
      detail: `per packet; reset + ${PACKET_BATCH} reservations with a copy each`,
      run(iterations) {
        for (let it = 0; it < iterations; it++) {
          batch.reset();
          for (let k = 0; k < PACKET_BATCH; k++) batch.memory.set(packet1420, batch.reservePacketOffset(packet1420.length));
        }
      },
    },
    {
      ...base,
      id: "call/0/session-reinstall",
      impl: "sessions.drop + sessions.install",
      size: 0,
      ops: 1,
      detail: "what the open cases pay once per pass",
      run(iterations) {
        for (let it = 0; it < iterations; it++) rig.reinstallReceiver();
      },
    },
  ];
}

// --- 4 and 5. Run, compare, report ---

function packageVersion(name: string): string {
  try {
    const manifest = JSON.parse(readFileSync(join(repoRoot(), "node_modules", name, "package.json"), "utf8")) as { version?: string };
    return manifest.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

function engineFile(build: "release" | "debug"): string {
  const path = wasmPath(build);
  const bytes = readFileSync(path);
  const sha = createHash("sha256").update(bytes).digest("hex").slice(0, 16);
  const modified = statSync(path).mtime.toISOString().slice(0, 19).replace("T", " ");
  return `${relative(repoRoot(), path)}, ${bytes.length} bytes, sha256 ${sha}…, built ${modified} UTC`;
}

function notes(quick: boolean, build: string, openSet: Record<number, number>, machine: MachineInfo): string[] {
  const out = [
    "MB/s counts the payload (the inner IP packet: 64 B, 1420 B or 16 KiB). WireGuard pads it to a multiple of 16 (1420 → 1424 B) and every implementation here encrypts the padded payload, as a WireGuard daemon must.",
    `ours-batch seal: one session; each batch is reset, ${PACKET_BATCH} plaintexts are reserved and seal() is called once. The plaintext is not rewritten per batch: in the daemon the TUN driver reads it straight into the arena, so the benchmark reseals whatever the views hold.`,
    `ours-batch open: a peer session pre-seals distinct counters (${Object.entries(openSet).map(([s, c]) => `${c} at ${formatSize(Number(s))}`).join(", ")}); each batch copies packets into the arena at reservePacketOffset (standing in for recvmmsg writing into the arena) and calls open() once. The replay window rejects repeated counters, so the receiving session is reinstalled (drop + install) after each pass, inside the timing. Every batch must authenticate all its packets or the run aborts.`,
    `16 KiB is not a packet size: the batch carries ${LARGE_BATCH} message per call. ours-oneshot is engine.chacha20Poly1305Seal/Open, which copies input into engine scratch and the result out, like the other libraries' one-shot APIs.`,
    "Every implementation uses WireGuard's per-packet nonce (4 zero bytes ‖ 64-bit little-endian counter). node:crypto creates one cipher per packet (createCipheriv, update, final, getAuthTag), as a daemon would; the anchors return fresh buffers per packet, which is part of their cost.",
    "Before timing, our batch seal is checked byte for byte against node:crypto, @noble/ciphers, libsodium and our one-shot seal at every size, our open against the original plaintext, and our BLAKE2s against @noble/hashes.",
    "Targets are checked on ours-batch (what the daemons use); ratios for ours-oneshot and for open are informational.",
  ];
  if (quick) out.push("Quick mode: few, short samples; figures are rough. Record full-mode runs only.");
  if (build === "debug") out.push("Debug build (Binaryen -O0, assertions kept): not what the daemons ship; compare release figures.");
  const load = loadWarning(machine);
  if (load) out.push(load);
  return out;
}

async function run(options: SuiteOptions): Promise<SuiteReport> {
  const { budget, progress, header } = await startRun("engine", options);
  await sodium.ready;

  // 1 and 2: rig and agreement checks.
  const rig = new Rig(options.build);
  const plaintexts = new Map<number, Uint8Array>();
  const openSets = new Map<number, OpenSet>();
  for (const size of SIZES) {
    const plaintext = filler(size, 0x1000 + size);
    plaintexts.set(size, plaintext);
    checkSealAgreement(rig, size, plaintext);
    const set = rig.sealOpenSet(plaintext, OPEN_SET[size]!);
    openSets.set(size, set);
    checkOpenAgreement(rig, size, plaintext, set);
    checkHashAgreement(rig, plaintext);
  }

  // 3 and 4: measure group by group.
  const groups: [string, BenchCase[]][] = [];
  for (const size of SIZES) groups.push([`seal ${formatSize(size)}`, sealCases(rig, size, plaintexts.get(size)!)]);
  for (const size of SIZES) groups.push([`open ${formatSize(size)}`, openCases(rig, size, openSets.get(size)!)]);
  for (const size of SIZES) groups.push([`BLAKE2s ${formatSize(size)}`, hashCases(rig, plaintexts.get(size)!)]);
  groups.push(["binding overhead", overheadCases(rig, openSets.get(1420)!.packets[0]!)]);
  const figures: Figure[] = [];
  groups.forEach(([name, cases], i) => {
    progress(`[${i + 1}/${groups.length}] ${name}`);
    figures.push(...measureGroup(cases, budget));
  });

  // 5: ratios and targets.
  const ratios: Ratio[] = [];
  for (const op of ["seal", "open"]) {
    for (const size of SIZES) {
      for (const ours of [IMPL.oursBatch, IMPL.oursOneShot]) {
        for (const anchor of AEAD_ANCHORS) ratios.push(ratioOf(figures, caseId(op, size, ours), caseId(op, size, anchor)));
      }
    }
  }
  for (const size of SIZES) {
    ratios.push(ratioOf(figures, caseId("blake2s", size, IMPL.oursHash), caseId("blake2s", size, IMPL.nobleHash)));
  }
  const targets: TargetResult[] = TARGETS.map((t) =>
    checkTarget(ratioOf(figures, caseId("seal", t.size, IMPL.oursBatch), caseId("seal", t.size, t.anchor)), t.min),
  );

  const openSetSizes = Object.fromEntries(SIZES.map((s) => [s, OPEN_SET[s]!]));
  const common = header();
  return {
    ...common,
    units: {
      mbPerSec: "10^6 payload bytes per second",
      opsPerSec: "messages (packets, hashes or calls) per second",
      nsPerOp: "median nanoseconds per message or call",
      ratio: "ours ÷ anchor, median against median, same run",
    },
    subject: {
      Engine: `${options.build} build, ${engineFile(options.build)}`,
      Batches: `${PACKET_BATCH} packets per call at ${PACKET_SIZES.map(formatSize).join(" and ")}; ${LARGE_BATCH} message per call at ${formatSize(LARGE_SIZE)}`,
      Anchors: [
        `node:crypto (OpenSSL ${process.versions.openssl ?? "unknown"})`,
        `@noble/ciphers ${packageVersion("@noble/ciphers")}`,
        `libsodium-wrappers ${packageVersion("libsodium-wrappers")} (libsodium ${sodium.sodium_version_string()})`,
        `@noble/hashes ${packageVersion("@noble/hashes")}`,
      ].join(", "),
    },
    figures,
    ratios,
    targets,
    notes: notes(options.quick, options.build, openSetSizes, common.machine),
  };
}

// --- Tables ---

function cell(figures: readonly Figure[], id: string): string {
  const figure = findFigure(figures, id);
  const rate = figure.mbPerSec ?? figure.opsPerSec;
  return `${formatRate(rate.median)} ${formatSpread(rate)}`;
}

function findRatio(ratios: readonly Ratio[], ours: string, anchor: string): number {
  const r = ratios.find((x) => x.ours === ours && x.anchor === anchor);
  return r ? r.ratio : Number.NaN;
}

function tables(report: SuiteReport): ReportTable[] {
  const { figures, ratios } = report;
  const aead = (op: string): ReportTable => ({
    title: `ChaCha20-Poly1305 ${op}, MB/s`,
    headers: ["size", ...AEAD_IMPLS],
    rows: SIZES.map((size) => [formatSize(size), ...AEAD_IMPLS.map((impl) => cell(figures, caseId(op, size, impl)))]),
  });
  const ratioRows: string[][] = [];
  for (const op of ["seal", "open"]) {
    for (const ours of [IMPL.oursBatch, IMPL.oursOneShot]) {
      for (const size of SIZES) {
        const oursId = caseId(op, size, ours);
        ratioRows.push([
          op,
          formatSize(size),
          ours,
          ...AEAD_ANCHORS.map((a) => formatRatio(findRatio(ratios, oursId, caseId(op, size, a)))),
        ]);
      }
    }
  }
  const call = (id: string): Figure => findFigure(figures, id);
  const overhead = ["call/0/empty-seal", "call/64/reserve-plaintext", "call/1420/reserve-packet-copy", "call/0/session-reinstall"];
  return [
    aead("seal"),
    aead("open"),
    {
      title: "Ratios, ours ÷ anchor (same run)",
      headers: ["op", "size", "ours", ...AEAD_ANCHORS.map((a) => `÷ ${a}`)],
      rows: ratioRows,
      alignRight: [false, true, false, true, true, true],
    },
    {
      title: "Targets (seal, ours-batch ÷ anchor)",
      headers: ["size", "anchor", "ratio", "target", "result"],
      rows: report.targets.map((t) => [
        formatSize(t.size),
        findFigure(figures, t.anchor).impl,
        formatRatio(t.ratio),
        `≥ ${t.min}`,
        formatTarget(t),
      ]),
      alignRight: [true, false, true, true, false],
    },
    {
      title: "BLAKE2s, MB/s",
      headers: ["size", IMPL.oursHash, IMPL.nobleHash, "ours ÷ noble"],
      rows: SIZES.map((size) => {
        const ours = caseId("blake2s", size, IMPL.oursHash);
        const noble = caseId("blake2s", size, IMPL.nobleHash);
        return [formatSize(size), cell(figures, ours), cell(figures, noble), formatRatio(findRatio(ratios, ours, noble))];
      }),
    },
    {
      title: "Binding overhead, ns per call or packet (median)",
      headers: ["what", "ns", "per"],
      rows: overhead.map((id) => {
        const f = call(id);
        return [f.impl, f.nsPerOp.toFixed(f.nsPerOp >= 100 ? 0 : 1), f.ops > 1 ? "packet" : "call"];
      }),
      alignRight: [false, true, false],
    },
  ];
}

/** The engine suite, as the CLI runs it. */
export const engineSuite: BenchSuite = {
  name: "engine",
  summary: "ChaCha20-Poly1305 seal/open (batched WireGuard transport) and BLAKE2s vs node:crypto, @noble, libsodium",
  run,
  tables,
};

/** Runs the engine suite; exported for tests and scripts. */
export function runEngineSuite(options: SuiteOptions): Promise<SuiteReport> {
  return run(options);
}
