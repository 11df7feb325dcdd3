// The relay's channel bindings: the binding's side of engine/relay.ts. A binding joins a client
// endpoint and channel number to a peer endpoint through one relay socket (relay id); the batch's
// relayFromClients/relayFromPeers then rewrite whole batches through them in one call each.
//
// Endpoints are ENDPOINT_SIZE-byte arrays in the native addon's encoding (daemons/native/endpoint.ts).

import { ENDPOINT_SIZE, RESULT_INDEX_IN_USE, RESULT_OK, RESULT_TABLE_FULL } from "./constants.js";
import type { EngineExports } from "./engine.js";
import { EngineError, checkBytes, checkInteger } from "./errors.js";

export const CHANNEL_MIN = 0x4000;
/** RFC 5766's range, which older clients use; RFC 8656 clients keep to 0x4FFF (engine/relay.ts). */
export const CHANNEL_MAX = 0x7fff;

/** One channel binding (RFC 8656 §12). */
export interface ChannelBinding {
  /** Where the client's ChannelData comes from at the listening socket. */
  client: Uint8Array;
  channel: number;
  /** The relay socket (allocation) the binding belongs to; the daemon numbers them. */
  relayId: number;
  peer: Uint8Array;
}

/** Channel bindings held in engine memory, addressed by slot. */
export class RelayChannels {
  private readonly free: number[] = [];
  private readonly scratch: number;

  constructor(
    private readonly x: EngineExports,
    private readonly mem: Uint8Array,
    readonly capacity: number,
  ) {
    for (let slot = capacity - 1; slot >= 0; slot--) this.free.push(slot);
    this.scratch = x.scratchPtr();
  }

  /** Adds a binding and returns its slot; refuses a channel or peer the relay id already binds. */
  bind(binding: ChannelBinding): number {
    checkInteger("channel", binding.channel, CHANNEL_MIN, CHANNEL_MAX);
    checkInteger("relayId", binding.relayId, 0, 0xffffffff);
    this.stage(binding.client, binding.peer, "channels.bind");
    const slot = this.free.pop();
    if (slot === undefined) throw new EngineError("TABLE_FULL", `channels.bind: all ${this.capacity} binding slots are in use`);
    const rc = this.x.relayBind(slot, this.scratch, binding.channel, binding.relayId >>> 0, this.scratch + ENDPOINT_SIZE);
    if (rc !== RESULT_OK) {
      this.free.push(slot);
      if (rc === RESULT_INDEX_IN_USE) {
        throw new EngineError("INDEX_IN_USE", `channels.bind: channel ${binding.channel} of that client, or that peer on relay ${binding.relayId}, is already bound`);
      }
      if (rc === RESULT_TABLE_FULL) throw new EngineError("TABLE_FULL", "channels.bind: the binding table is full");
      throw new EngineError("BAD_ARGUMENT", "channels.bind: an endpoint is not a valid family 4 or 6 endpoint");
    }
    return slot;
  }

  unbind(slot: number): void {
    checkInteger("slot", slot, 0, this.capacity - 1);
    if (this.x.relayUnbind(slot) !== RESULT_OK) throw new EngineError("NO_SESSION", `channels.unbind: slot ${slot} holds no binding`);
    this.free.push(slot);
  }

  /** The slot binding (client, channel), if any. */
  findClient(client: Uint8Array, channel: number): number | undefined {
    checkInteger("channel", channel, 0, 0xffff);
    this.stage(client, client, "channels.findClient");
    const slot = this.x.relayFindClient(this.scratch, channel);
    return slot < 0 ? undefined : slot;
  }

  /** The slot binding (relay id, peer), if any. */
  findPeer(relayId: number, peer: Uint8Array): number | undefined {
    checkInteger("relayId", relayId, 0, 0xffffffff);
    this.stage(peer, peer, "channels.findPeer");
    const slot = this.x.relayFindPeer(relayId >>> 0, this.scratch);
    return slot < 0 ? undefined : slot;
  }

  get size(): number {
    return this.x.relayChannelCount();
  }

  private stage(first: Uint8Array, second: Uint8Array, op: string): void {
    checkBytes(op, "endpoint", first, ENDPOINT_SIZE);
    checkBytes(op, "endpoint", second, ENDPOINT_SIZE);
    this.mem.set(first, this.scratch);
    this.mem.set(second, this.scratch + ENDPOINT_SIZE);
  }
}
