export { Engine, DEFAULT_ENGINE_OPTIONS, wasmPath } from "./engine.js";
export type { EngineBuild, EngineOptions } from "./engine.js";
export { EngineError } from "./errors.js";
export { GatewayFastPath } from "./gateway.js";
export type {
  FastClient, FastFilters, FastFlow, FastFlowState, FastParse, FastPortRange, FastTcpState, GatewayFastPathConfig, GatewayTableSizes,
  NatTimeouts,
} from "./gateway.js";
export { CHANNEL_MAX, CHANNEL_MIN, RelayChannels } from "./relay.js";
export type { ChannelBinding } from "./relay.js";
export { AllowedIps, parseAddress, parsePrefix } from "./routes.js";
export type { Prefix } from "./routes.js";
export { TransportBatch, TransportSessions } from "./transport.js";
export type { SessionKeys } from "./transport.js";
export * from "./constants.js";
