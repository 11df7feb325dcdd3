// WireGuard protocol constants, named as the whitepaper ("WireGuard: Next Generation Kernel Network
// Tunnel", Donenfeld) names them, with every wire offset of the handshake messages. Nothing else in
// the protocol code spells a number from the spec.

const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));

// --- Noise (§5.4) ---
export const CONSTRUCTION = ascii("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s");
export const IDENTIFIER = ascii("WireGuard v1 zx2c4 Jason@zx2c4.com");
export const LABEL_MAC1 = ascii("mac1----");
export const LABEL_COOKIE = ascii("cookie--");

export const KEY_SIZE = 32;
export const HASH_SIZE = 32;
export const MAC_SIZE = 16;
export const TAG_SIZE = 16;
export const TIMESTAMP_SIZE = 12;
export const COOKIE_SIZE = 16;
export const COOKIE_NONCE_SIZE = 24;

// --- Message types (§5.4.2-5.4.7) ---
export const MESSAGE_INITIATION_TYPE = 1;
export const MESSAGE_RESPONSE_TYPE = 2;
export const MESSAGE_COOKIE_REPLY_TYPE = 3;
export const MESSAGE_TRANSPORT_TYPE = 4;

// Handshake initiation (§5.4.2): 148 bytes.
export const MESSAGE_INITIATION_SIZE = 148;
export const INITIATION_OFFSET_SENDER = 4;
export const INITIATION_OFFSET_EPHEMERAL = 8;
export const INITIATION_OFFSET_STATIC = 40; // 32 + 16 tag
export const INITIATION_OFFSET_TIMESTAMP = 88; // 12 + 16 tag
export const INITIATION_OFFSET_MAC1 = 116;
export const INITIATION_OFFSET_MAC2 = 132;

// Handshake response (§5.4.3): 92 bytes.
export const MESSAGE_RESPONSE_SIZE = 92;
export const RESPONSE_OFFSET_SENDER = 4;
export const RESPONSE_OFFSET_RECEIVER = 8;
export const RESPONSE_OFFSET_EPHEMERAL = 12;
export const RESPONSE_OFFSET_EMPTY = 44; // 0 + 16 tag
export const RESPONSE_OFFSET_MAC1 = 60;
export const RESPONSE_OFFSET_MAC2 = 76;

// Cookie reply (§5.4.7): 64 bytes.
export const MESSAGE_COOKIE_REPLY_SIZE = 64;
export const COOKIE_REPLY_OFFSET_RECEIVER = 4;
export const COOKIE_REPLY_OFFSET_NONCE = 8;
export const COOKIE_REPLY_OFFSET_COOKIE = 32; // 16 + 16 tag

// --- Timers and limits (§6.1), in milliseconds where they are times ---
export const REKEY_AFTER_MESSAGES = 2n ** 60n;
export const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;
export const REKEY_AFTER_TIME = 120_000;
export const REJECT_AFTER_TIME = 180_000;
export const REKEY_ATTEMPT_TIME = 90_000;
export const REKEY_TIMEOUT = 5_000;
export const KEEPALIVE_TIMEOUT = 10_000;
/** A cookie is used for mac2 this long after it arrived; the cookie secret rotates as often (§5.4.7). */
export const COOKIE_REFRESH_TIME = 120_000;
/** Initiations from one peer faster than this are ignored (wireguard-go: 50 per second). */
export const HANDSHAKE_INITIATION_RATE = 20;
