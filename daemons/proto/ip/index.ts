// The ip folder's public face: addresses, parsing, checksums, in-place rewriting, ICMP errors.

export * from "./address.js";
export * from "./checksum.js";
export * from "./constants.js";
export * from "./icmp.js";
export * from "./packet.js";
export * from "./rewrite.js";
