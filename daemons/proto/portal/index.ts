// The portal ↔ device wire protocol: envelope (frames.ts), events (schema.ts), limits and timers
// (constants.ts). The one folder of daemons/ that server/ imports.

export * from "./addresses.js";
export * from "./constants.js";
export * from "./frames.js";
export * from "./schema.js";
export * from "./examples.js";
export * from "./relay-credentials.js";
export * from "./token.js";
