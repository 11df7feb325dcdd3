// The gateway folder's public face: GatewayState, its control message codec and its constants.

export * from "./constants.js";
export * from "./control.js";
export * from "./filters.js";
export * from "./nat.js";
export * from "./state.js";
