export { Engine, DEFAULT_ENGINE_OPTIONS, wasmPath } from "./engine.js";
export type { EngineBuild, EngineOptions } from "./engine.js";
export { EngineError } from "./errors.js";
export { AllowedIps, parseAddress, parsePrefix } from "./routes.js";
export type { Prefix } from "./routes.js";
export { TransportBatch, TransportSessions } from "./transport.js";
export type { SessionKeys } from "./transport.js";
export * from "./constants.js";
