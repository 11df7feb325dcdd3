// daemons/native: the N-API addon (src/*.c) behind typed classes. TUN device and batched UDP read
// and write straight into a caller's memory, normally the engine's WebAssembly memory
// (engine.batch.memory), at offsets the engine reserved; readiness comes from libuv.

export { addonPath, nativeAddon } from "./addon.js";
export type { NativeAddon } from "./addon.js";
export { ADDRESS_SIZE, readEndpoint, writeEndpoint } from "./endpoint.js";
export type { Endpoint } from "./endpoint.js";
export { PacketVector } from "./packet-vector.js";
export type { ReadyCallback } from "./readiness.js";
export { TunDevice } from "./tun.js";
export { UdpSocket } from "./udp-socket.js";
