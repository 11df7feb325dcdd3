// The binding: the only TypeScript that touches WebAssembly. It compiles each build of the module
// once per process, instantiates one engine per owner (each with its own memory), validates every
// length and key before crossing the boundary, and turns engine result codes into clear errors.
//
// Memory never grows after init, so the views taken here stay valid for the engine's life.

import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  BLAKE2S_KEY_MAX, BLAKE2S_OUT_MAX, HCHACHA_NONCE_SIZE, KEY_SIZE, MAX_CHANNELS, MAX_GATEWAY_CLIENTS, MAX_GATEWAY_FLOWS,
  MAX_GATEWAY_RULES, MAX_ROUTES, NONCE_SIZE, RESULT_OK, TAG_SIZE, XNONCE_SIZE,
} from "./constants.js";
import { EngineError, checkBytes, checkInteger } from "./errors.js";
import { GatewayFastPath, type GatewayTableSizes } from "./gateway.js";
import { RelayChannels } from "./relay.js";
import { AllowedIps } from "./routes.js";
import { TransportBatch, TransportSessions } from "./transport.js";

export type EngineBuild = "release" | "debug";

export interface EngineOptions {
  /** Which WebAssembly build to load; release unless testing the debug build. */
  build?: EngineBuild;
  /** Session slots (WireGuard keypairs) the engine can hold at once. */
  maxSessions?: number;
  /** Bytes of packet arena shared by a batch. */
  arenaBytes?: number;
  /** Packets per batch call. */
  maxBatch?: number;
  /** Allowed IPs (prefixes of all peers, both families) the routing table can hold at once. */
  maxRoutes?: number;
  /** TURN channel bindings the relay's forwarding table can hold at once (engine.channels). */
  maxChannels?: number;
  /** The gateway's fast path (engine.gateway) and its table sizes; false (the default) leaves it out. */
  gateway?: GatewayTableSizes | false;
}

export const DEFAULT_ENGINE_OPTIONS = {
  build: "release",
  maxSessions: 4096,
  arenaBytes: 4 * 1024 * 1024,
  maxBatch: 256,
  maxRoutes: 16384,
  maxChannels: 4096,
  gateway: false,
} as const satisfies Required<EngineOptions>;

/** The raw exports of engine/index.ts; pointers and lengths are numbers, counters are bigints. */
export interface EngineExports {
  memory: WebAssembly.Memory;
  init(maxSessions: number, arenaSize: number, maxBatch: number, maxRoutes: number, maxChannels: number): number;
  scratchPtr(): number;
  scratchSize(): number;
  arenaPtr(): number;
  arenaSize(): number;
  descriptorsPtr(): number;
  descriptorCount(): number;
  routePeersPtr(): number;
  relayEndpointsPtr(): number;
  aeadSealAt(key: number, nonce: number, aad: number, aadLen: number, data: number, len: number, tag: number): void;
  aeadOpenAt(key: number, nonce: number, aad: number, aadLen: number, data: number, len: number, tag: number): number;
  xaeadSealAt(key: number, nonce: number, aad: number, aadLen: number, data: number, len: number, tag: number): void;
  xaeadOpenAt(key: number, nonce: number, aad: number, aadLen: number, data: number, len: number, tag: number): number;
  chacha20At(key: number, nonce: number, counter: number, data: number, len: number): void;
  hchacha20At(key: number, nonce: number, out: number): void;
  poly1305At(key: number, msg: number, len: number, tag: number): void;
  blake2sInitAt(outLen: number, key: number, keyLen: number): number;
  blake2sUpdateAt(data: number, len: number): void;
  blake2sFinalAt(out: number): void;
  blake2sWipe(): void;
  sessionInstall(slot: number, localIndex: number, remoteIndex: number, sendKey: number, recvKey: number): number;
  sessionDrop(slot: number): number;
  sessionFind(localIndex: number): number;
  sessionSendCounter(slot: number): bigint;
  sessionCount(): number;
  sessionSetPeer(slot: number, peer: number): number;
  /** A u32 returned as a signed i32: NO_PEER arrives as -1. */
  sessionGetPeer(slot: number): number;
  transportSeal(count: number): number;
  transportOpen(count: number): number;
  routeInsert(version: number, addr: number, cidr: number, peer: number): number;
  routeRemove(version: number, addr: number, cidr: number): number;
  routeRemovePeer(peer: number): number;
  /** A u32 returned as a signed i32: NO_PEER arrives as -1. */
  routeLookup(version: number, addr: number): number;
  routeClear(): void;
  routeCount(): number;
  routeOutbound(count: number): number;
  checkInbound(count: number): number;
  relayBind(slot: number, clientEp: number, channel: number, relayId: number, peerEp: number): number;
  relayUnbind(slot: number): number;
  relayFindClient(clientEp: number, channel: number): number;
  relayFindPeer(relayId: number, peerEp: number): number;
  relayChannelCount(): number;
  relayFromClients(count: number): number;
  relayFromPeers(relayId: number, count: number): number;
  gatewayInit(maxClients: number, maxRules: number, maxFlows: number, maxProxies: number): number;
  gatewayConfigure(
    own4: number, own6: number, controlPort: number, proxy4: number, length4: number, proxy6: number, length6: number,
    udp: number, tcpEstablished: number, tcpTransitory: number, icmp: number,
  ): number;
  gatewaySetDeadline(at: number): void;
  gatewaySetAddressesIncomplete(incomplete: number): void;
  gatewayClientSet(peer: number, v4: number, v6: number, flags: number): number;
  gatewayClientRemove(peer: number): number;
  gatewayAddressSet(version: number, addr: number, peer: number): number;
  gatewayAddressRemove(version: number, addr: number): number;
  /** A u32 returned as a signed i32: NO_PEER arrives as -1. */
  gatewayAddressLookup(version: number, addr: number): number;
  gatewayRuleSet(
    slot: number, peer: number, kind: number, version: number, addr: number, length: number, filterFlags: number, tcpCount: number,
    udpCount: number, ranges: number,
  ): number;
  gatewayRuleRemove(slot: number): number;
  gatewayProxySet(peer: number, version: number, addr: number, rule: number): number;
  gatewayProxyRemove(peer: number, version: number, addr: number): number;
  gatewayProxyCount(): number;
  gatewayRuleGeneration(slot: number): number;
  gatewayRuleCount(): number;
  gatewayFlowSet(
    slot: number, version: number, protocol: number, client: number, clientPort: number, proxy: number, port: number, real: number,
    outsidePort: number, tcp: number, expiresAt: number, rule: number, peer: number,
  ): number;
  gatewayFlowRemove(slot: number): number;
  gatewayFlowLookup(outside: number, version: number, protocol: number, client: number, portA: number, other: number, port: number): number;
  gatewayFlowTcpState(slot: number): number;
  gatewayFlowExpiresAt(slot: number): number;
  gatewayFlowLastUsed(slot: number): number;
  gatewayFlowCount(): number;
  gatewayTouchedPtr(): number;
  gatewayTouchedCount(): number;
  gatewayClearTouched(): void;
  gatewayFromClients(start: number, count: number, headroom: number, flags: number, now: number): number;
  gatewayFromResources(start: number, count: number, headroom: number, flags: number, now: number): number;
  ipParseAt(ptr: number, len: number, out: number): number;
  ipRewriteAt(ptr: number, len: number, op: number, dst: number, value: number): number;
}

const EMPTY = new Uint8Array(0);

// Scratch layout used by the one-shot calls.
const S_KEY = 0;
const S_NONCE = 32;
const S_TAG = 64;
const S_OUT = 80;
const S_DATA = 128;

const modules = new Map<EngineBuild, WebAssembly.Module>();

/** Finds engine/build/<build>.wasm above this file, from source (daemons/engine) or from dist. */
export function wasmPath(build: EngineBuild): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, "engine", "build", `${build}.wasm`);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new EngineError(
    "ENGINE_NOT_BUILT",
    `engine/build/${build}.wasm not found: run \`npm run build:engine\` (npm install does it too)`,
  );
}

function compiled(build: EngineBuild): WebAssembly.Module {
  let module = modules.get(build);
  if (!module) {
    module = new WebAssembly.Module(readFileSync(wasmPath(build)));
    modules.set(build, module);
  }
  return module;
}

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new EngineError("UNSUPPORTED_PLATFORM", "the engine binding requires a little-endian platform");
}

/**
 * A WebAssembly engine instance: one-shot primitives, transport sessions, allowed IPs, the relay's
 * channel bindings, the packet batch and, when asked for, the gateway's fast path.
 */
export class Engine {
  readonly build: EngineBuild;
  readonly sessions: TransportSessions;
  readonly routes: AllowedIps;
  readonly channels: RelayChannels;
  readonly batch: TransportBatch;
  private readonly fastPath: GatewayFastPath | undefined;
  private readonly x: EngineExports;
  private readonly mem: Uint8Array;
  private readonly scratch: number;
  private readonly dataRoom: number;

  private constructor(options: Required<EngineOptions>) {
    this.build = options.build;
    checkInteger("maxSessions", options.maxSessions, 1, 1 << 20);
    checkInteger("arenaBytes", options.arenaBytes, 1, 1 << 30);
    checkInteger("maxBatch", options.maxBatch, 1, 1 << 16);
    checkInteger("maxRoutes", options.maxRoutes, 1, MAX_ROUTES);
    checkInteger("maxChannels", options.maxChannels, 1, MAX_CHANNELS);
    const instance = new WebAssembly.Instance(compiled(options.build), {
      env: {
        abort: (_msg: number, _file: number, line: number, col: number) => {
          throw new EngineError("ENGINE_ABORT", `engine assertion failed at ${line}:${col}`);
        },
      },
    });
    this.x = instance.exports as unknown as EngineExports;
    const rc = this.x.init(options.maxSessions, options.arenaBytes, options.maxBatch, options.maxRoutes, options.maxChannels);
    if (rc !== RESULT_OK) throw new EngineError("ENGINE_INIT", `engine init failed with code ${rc}`);
    const gateway = options.gateway;
    if (gateway !== false) {
      // Before the views below: the gateway's tables grow memory.
      checkInteger("gateway.maxClients", gateway?.maxClients, 1, MAX_GATEWAY_CLIENTS);
      checkInteger("gateway.maxRules", gateway.maxRules, 1, MAX_GATEWAY_RULES);
      checkInteger("gateway.maxFlows", gateway.maxFlows, 1, MAX_GATEWAY_FLOWS);
      checkInteger("gateway.maxProxies", gateway.maxProxies ?? gateway.maxFlows, 1, MAX_GATEWAY_FLOWS);
      const grc = this.x.gatewayInit(gateway.maxClients, gateway.maxRules, gateway.maxFlows, gateway.maxProxies ?? gateway.maxFlows);
      if (grc !== RESULT_OK) throw new EngineError("ENGINE_INIT", `engine gatewayInit failed with code ${grc}`);
    }
    this.mem = new Uint8Array(this.x.memory.buffer);
    this.scratch = this.x.scratchPtr();
    this.dataRoom = this.x.scratchSize() - S_DATA - TAG_SIZE;
    this.sessions = new TransportSessions(this.x, this.mem, options.maxSessions);
    this.routes = new AllowedIps(this.x, this.mem, options.maxRoutes);
    this.channels = new RelayChannels(this.x, this.mem, options.maxChannels);
    this.batch = new TransportBatch(this.x, this.mem, this.sessions);
    this.fastPath = gateway === false ? undefined : new GatewayFastPath(this.x, this.mem, gateway);
  }

  /** The gateway's fast path; only for an engine created with the gateway option. */
  get gateway(): GatewayFastPath {
    if (!this.fastPath) throw new EngineError("GATEWAY_NOT_ENABLED", "engine.gateway: create the engine with the gateway option (table sizes)");
    return this.fastPath;
  }

  /** Instantiates an engine; options default to DEFAULT_ENGINE_OPTIONS. */
  static create(options: EngineOptions = {}): Engine {
    return new Engine({ ...DEFAULT_ENGINE_OPTIONS, ...options });
  }

  /**
   * Largest AAD + message length the one-shot calls accept (the message is the plaintext; for open,
   * the sealed text less its tag), so whatever seal accepts, open accepts.
   */
  get oneShotLimit(): number {
    return this.dataRoom;
  }

  /** ChaCha20-Poly1305 (RFC 8439 §2.8): returns ciphertext ‖ tag. */
  chacha20Poly1305Seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array = EMPTY): Uint8Array {
    return this.seal("chacha20Poly1305Seal", key, nonce, NONCE_SIZE, plaintext, aad, false);
  }

  /** ChaCha20-Poly1305 open: the plaintext, or null when the tag does not verify. */
  chacha20Poly1305Open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array = EMPTY): Uint8Array | null {
    return this.open("chacha20Poly1305Open", key, nonce, NONCE_SIZE, sealed, aad, false);
  }

  /**
   * ChaCha20-Poly1305 without AAD on `plaintext` zero-padded to `paddedLength` bytes, ciphertext ‖
   * tag written into `out` at `at`: a WireGuard transport message's body straight into the caller's
   * message, without the intermediate arrays of chacha20Poly1305Seal.
   */
  chacha20Poly1305SealPaddedInto(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, paddedLength: number, out: Uint8Array, at: number): void {
    const op = "chacha20Poly1305SealPaddedInto";
    checkBytes(op, "key", key, KEY_SIZE);
    checkBytes(op, "nonce", nonce, NONCE_SIZE);
    checkBytes(op, "plaintext", plaintext);
    checkBytes(op, "out", out);
    checkInteger("paddedLength", paddedLength, plaintext.length, this.dataRoom);
    checkInteger("at", at, 0, Math.max(0, out.length - paddedLength - TAG_SIZE));
    if (at + paddedLength + TAG_SIZE > out.length) {
      throw new EngineError("BAD_LENGTH", `${op}: ${paddedLength + TAG_SIZE} bytes do not fit in out (${out.length} bytes) at ${at}`);
    }
    const base = this.scratch;
    const data = base + S_DATA;
    this.mem.set(key, base + S_KEY);
    this.mem.set(nonce, base + S_NONCE);
    this.mem.set(plaintext, data);
    this.mem.fill(0, data + plaintext.length, data + paddedLength);
    this.x.aeadSealAt(base + S_KEY, base + S_NONCE, data, 0, data, paddedLength, data + paddedLength);
    out.set(this.mem.subarray(data, data + paddedLength + TAG_SIZE), at);
    this.wipeScratch(data + paddedLength + TAG_SIZE);
  }

  /** XChaCha20-Poly1305 (24-byte nonce): returns ciphertext ‖ tag. */
  xchacha20Poly1305Seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array = EMPTY): Uint8Array {
    return this.seal("xchacha20Poly1305Seal", key, nonce, XNONCE_SIZE, plaintext, aad, true);
  }

  /** XChaCha20-Poly1305 open: the plaintext, or null when the tag does not verify. */
  xchacha20Poly1305Open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array = EMPTY): Uint8Array | null {
    return this.open("xchacha20Poly1305Open", key, nonce, XNONCE_SIZE, sealed, aad, true);
  }

  /** Raw ChaCha20 (RFC 8439 §2.4) keystream XOR, starting at block counter. */
  chacha20(key: Uint8Array, nonce: Uint8Array, data: Uint8Array, counter = 0): Uint8Array {
    checkBytes("chacha20", "key", key, KEY_SIZE);
    checkBytes("chacha20", "nonce", nonce, NONCE_SIZE);
    checkInteger("counter", counter, 0, 0xffffffff);
    checkBytes("chacha20", "data", data);
    this.checkRoom("chacha20", data.length);
    if (counter + Math.ceil(data.length / 64) > 2 ** 32) {
      // The 32-bit block counter would wrap to block 0, the AEAD's Poly1305 key block for this nonce.
      throw new EngineError("BAD_ARGUMENT", `chacha20: ${data.length} bytes from block ${counter} run past block 2^32 - 1`);
    }
    const base = this.scratch;
    this.mem.set(key, base + S_KEY);
    this.mem.set(nonce, base + S_NONCE);
    this.mem.set(data, base + S_DATA);
    this.x.chacha20At(base + S_KEY, base + S_NONCE, counter >>> 0, base + S_DATA, data.length);
    return this.takeOut(base + S_DATA, data.length);
  }

  /** HChaCha20: the 32-byte subkey XChaCha20 derives from a key and a 16-byte nonce. */
  hchacha20(key: Uint8Array, nonce: Uint8Array): Uint8Array {
    checkBytes("hchacha20", "key", key, KEY_SIZE);
    checkBytes("hchacha20", "nonce", nonce, HCHACHA_NONCE_SIZE);
    const base = this.scratch;
    this.mem.set(key, base + S_KEY);
    this.mem.set(nonce, base + S_NONCE);
    this.x.hchacha20At(base + S_KEY, base + S_NONCE, base + S_OUT);
    return this.takeOut(base + S_OUT, KEY_SIZE);
  }

  /** Poly1305 one-time authenticator (RFC 8439 §2.5). */
  poly1305(key: Uint8Array, message: Uint8Array): Uint8Array {
    checkBytes("poly1305", "key", key, KEY_SIZE);
    checkBytes("poly1305", "message", message);
    this.checkRoom("poly1305", message.length);
    const base = this.scratch;
    this.mem.set(key, base + S_KEY);
    this.mem.set(message, base + S_DATA);
    this.x.poly1305At(base + S_KEY, base + S_DATA, message.length, base + S_TAG);
    return this.takeOut(base + S_TAG, TAG_SIZE);
  }

  /**
   * BLAKE2s (RFC 7693) of the concatenation of parts, keyed when key is given; outLen 1..32 bytes.
   * Input of any size is fed through scratch in pieces.
   */
  blake2s(parts: Uint8Array | readonly Uint8Array[], options: { key?: Uint8Array; outLen?: number } = {}): Uint8Array {
    const outLen = options.outLen ?? BLAKE2S_OUT_MAX;
    const key = options.key ?? EMPTY;
    checkInteger("blake2s outLen", outLen, 1, BLAKE2S_OUT_MAX);
    if (!(key instanceof Uint8Array) || key.length > BLAKE2S_KEY_MAX) {
      throw new EngineError("BAD_KEY", `blake2s: key must be at most ${BLAKE2S_KEY_MAX} bytes, got ${describe(key)}`);
    }
    const list: readonly unknown[] = parts instanceof Uint8Array ? [parts] : Array.isArray(parts) ? parts : [parts];
    for (const part of list) {
      if (!(part instanceof Uint8Array)) throw new EngineError("BAD_INPUT", `blake2s: input must be Uint8Array, got ${describe(part)}`);
    }
    const base = this.scratch;
    let staged = 0;
    try {
      this.mem.set(key, base + S_KEY);
      if (this.x.blake2sInitAt(outLen, base + S_KEY, key.length) !== RESULT_OK) {
        throw new EngineError("BAD_ARGUMENT", "blake2s: engine refused the parameters");
      }
      for (const part of list as readonly Uint8Array[]) {
        for (let at = 0; at < part.length; at += this.dataRoom) {
          const piece = part.subarray(at, at + this.dataRoom);
          this.mem.set(piece, base + S_DATA);
          staged = Math.max(staged, piece.length);
          this.x.blake2sUpdateAt(base + S_DATA, piece.length);
        }
      }
      this.x.blake2sFinalAt(base + S_OUT);
      return this.mem.slice(base + S_OUT, base + S_OUT + outLen);
    } finally {
      // Final wipes the hash state; a throw before it must not leave the key there, nor the input in scratch.
      this.x.blake2sWipe();
      this.wipeScratch(base + S_DATA + staged);
    }
  }

  private seal(op: string, key: Uint8Array, nonce: Uint8Array, nonceSize: number, plaintext: Uint8Array, aad: Uint8Array, extended: boolean): Uint8Array {
    checkBytes(op, "key", key, KEY_SIZE);
    checkBytes(op, "nonce", nonce, nonceSize);
    checkBytes(op, "plaintext", plaintext);
    checkBytes(op, "aad", aad);
    const { data, aadAt } = this.stage(op, key, nonce, aad, plaintext, plaintext.length);
    const call = extended ? this.x.xaeadSealAt : this.x.aeadSealAt;
    const tag = data + plaintext.length;
    call(this.scratch + S_KEY, this.scratch + S_NONCE, aadAt, aad.length, data, plaintext.length, tag);
    return this.takeOut(data, plaintext.length + TAG_SIZE);
  }

  private open(op: string, key: Uint8Array, nonce: Uint8Array, nonceSize: number, sealed: Uint8Array, aad: Uint8Array, extended: boolean): Uint8Array | null {
    checkBytes(op, "key", key, KEY_SIZE);
    checkBytes(op, "nonce", nonce, nonceSize);
    checkBytes(op, "ciphertext", sealed);
    checkBytes(op, "aad", aad);
    if (sealed.length < TAG_SIZE) {
      throw new EngineError("BAD_LENGTH", `${op}: ciphertext must hold at least the ${TAG_SIZE}-byte tag, got ${sealed.length} bytes`);
    }
    const len = sealed.length - TAG_SIZE;
    const { data, aadAt } = this.stage(op, key, nonce, aad, sealed, len);
    const call = extended ? this.x.xaeadOpenAt : this.x.aeadOpenAt;
    const ok = call(this.scratch + S_KEY, this.scratch + S_NONCE, aadAt, aad.length, data, len, data + len);
    if (ok !== 1) {
      this.wipeScratch(data + sealed.length);
      return null;
    }
    return this.takeOut(data, len);
  }

  /**
   * Copies key, nonce, AAD and data into scratch, the data right behind the AAD with tag room after
   * it; returns where the data and AAD start. messageLen is the data less any tag.
   */
  private stage(op: string, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, data: Uint8Array, messageLen: number): { data: number; aadAt: number } {
    const dataOffset = S_DATA + aad.length;
    if (aad.length + messageLen > this.dataRoom) {
      throw new EngineError(
        "TOO_LARGE",
        `${op}: AAD (${aad.length} bytes) plus message (${messageLen} bytes) exceed the one-shot limit of ${this.dataRoom} bytes`,
      );
    }
    const base = this.scratch;
    this.mem.set(key, base + S_KEY);
    this.mem.set(nonce, base + S_NONCE);
    this.mem.set(aad, base + S_DATA);
    this.mem.set(data, base + dataOffset);
    return { data: base + dataOffset, aadAt: base + S_DATA };
  }

  private checkRoom(op: string, len: number): void {
    if (len > this.dataRoom) {
      throw new EngineError("TOO_LARGE", `${op}: ${len} bytes exceed the one-shot limit of ${this.dataRoom} bytes`);
    }
  }

  /** Copies a result out of scratch and wipes everything the call staged, keys included. */
  private takeOut(at: number, len: number): Uint8Array {
    const out = this.mem.slice(at, at + len);
    this.wipeScratch(at + len);
    return out;
  }

  private wipeScratch(end: number): void {
    this.mem.fill(0, this.scratch, end);
  }
}

function describe(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  return value === null ? "null" : typeof value;
}
