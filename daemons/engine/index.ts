export { Engine, DEFAULT_ENGINE_OPTIONS, wasmPath } from "./engine.js";
export type { EngineBuild, EngineOptions } from "./engine.js";
export { EngineError } from "./errors.js";
export { TransportBatch, TransportSessions } from "./transport.js";
export type { SessionKeys } from "./transport.js";
export * from "./constants.js";
