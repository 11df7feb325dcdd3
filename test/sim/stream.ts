// A small reliable transfer over UDP for the scenarios that push a stream through the tunnel (which
// itself promises nothing): selective repeat with a window, written once here.
// 1. The data is cut into `chunk`-byte chunks, each sent as one datagram [u32 sequence][bytes].
// 2. At most `window` chunks are unacknowledged at a time. Each due(now) first resends chunks
//    unacknowledged for `rto` ms (at most `resendPerCall`, so a dead path costs a bounded trickle),
//    then sends new ones (at most `pace`, when given) while the window has room.
// 3. The sink answers every datagram with [u32 next expected][u32 × 2 bitmap of the 64 chunks after
//    it that it already holds]: one lost ack costs nothing, the next one says the same and more.
// 4. The sink buffers chunks out of order and hashes them strictly in order, so a test compares its
//    SHA-256 with the data's.

import { createHash } from "node:crypto";

const ACK_BITMAP_CHUNKS = 64;
const ACK_BYTES = 4 + ACK_BITMAP_CHUNKS / 8;

export interface StreamOptions {
  chunk: number;
  window: number;
  /** Resend a chunk unacknowledged this long, in ms. */
  rto: number;
  /** New chunks per due() call; unlimited unless given. */
  pace?: number;
  /** Resends per due() call; unlimited unless given. */
  resendPerCall?: number;
}

/** The sending half: which chunks are out, when each last left, which are acknowledged. */
export class StreamSender {
  readonly chunks: number;
  private base = 0;
  private next = 0;
  private readonly acked: Uint8Array;
  private readonly sentAt: Float64Array;
  transmissions = 0;
  retransmissions = 0;

  constructor(private readonly data: Uint8Array, private readonly options: StreamOptions) {
    this.chunks = Math.ceil(data.length / options.chunk);
    this.acked = new Uint8Array(this.chunks);
    this.sentAt = new Float64Array(this.chunks);
  }

  get done(): boolean {
    return this.base === this.chunks;
  }

  /** The datagrams due now: timed-out chunks again, then new ones while the window and pace allow. */
  due(now: number): Uint8Array[] {
    const { rto, window, pace = Infinity, resendPerCall = Infinity } = this.options;
    const out: Uint8Array[] = [];
    for (let seq = this.base, resent = 0; seq < this.next && resent < resendPerCall; seq++) {
      if (this.acked[seq] === 0 && now - this.sentAt[seq]! >= rto) {
        this.retransmissions++;
        resent++;
        out.push(this.datagram(now, seq));
      }
    }
    for (let n = 0; n < pace && this.next < this.chunks && this.next < this.base + window; n++) out.push(this.datagram(now, this.next++));
    return out;
  }

  handleAck(payload: Uint8Array): void {
    if (payload.length !== ACK_BYTES) return;
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const cumulative = Math.min(view.getUint32(0), this.chunks);
    for (let seq = this.base; seq < cumulative; seq++) this.acked[seq] = 1;
    for (let i = 0; i < ACK_BITMAP_CHUNKS; i++) {
      const word = view.getUint32(4 + 4 * (i >> 5));
      const seq = cumulative + 1 + i;
      if ((word >>> (i & 31)) & 1 && seq < this.chunks) this.acked[seq] = 1;
    }
    while (this.base < this.chunks && this.acked[this.base] === 1) this.base++;
  }

  private datagram(now: number, seq: number): Uint8Array {
    this.sentAt[seq] = now;
    this.transmissions++;
    const { chunk } = this.options;
    const bytes = this.data.subarray(seq * chunk, Math.min((seq + 1) * chunk, this.data.length));
    const out = new Uint8Array(4 + bytes.length);
    new DataView(out.buffer).setUint32(0, seq);
    out.set(bytes, 4);
    return out;
  }
}

/** The receiving half: reorders, hashes in order, acknowledges. */
export class StreamSink {
  private expected = 0;
  private readonly held = new Map<number, Uint8Array>();
  private readonly hash = createHash("sha256");
  bytes = 0;
  duplicates = 0;
  private digestHex: string | undefined;

  constructor(private readonly chunks: number) {}

  get complete(): boolean {
    return this.expected === this.chunks;
  }

  digest(): string {
    this.digestHex ??= this.hash.digest("hex");
    return this.digestHex;
  }

  /** One datagram in; the ack to send back. */
  handle(payload: Uint8Array): Uint8Array {
    if (payload.length >= 4) {
      const seq = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0);
      if (seq < this.expected || this.held.has(seq) || seq >= this.chunks) this.duplicates++;
      else this.held.set(seq, payload.slice(4));
      for (let chunk = this.held.get(this.expected); chunk !== undefined; chunk = this.held.get(this.expected)) {
        this.hash.update(chunk);
        this.bytes += chunk.length;
        this.held.delete(this.expected);
        this.expected++;
      }
    }
    const ack = new Uint8Array(ACK_BYTES);
    const view = new DataView(ack.buffer);
    view.setUint32(0, this.expected);
    for (let i = 0; i < ACK_BITMAP_CHUNKS; i++) {
      if (!this.held.has(this.expected + 1 + i)) continue;
      const at = 4 + 4 * (i >> 5);
      view.setUint32(at, (view.getUint32(at) | (1 << (i & 31))) >>> 0);
    }
    return ack;
  }
}
