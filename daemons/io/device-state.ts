// What a client or gateway keeps on disk between runs, and the secrets it reads:
// 1. Its WireGuard private key, in <stateDir>/private.key (base64, mode 0600), made on first start,
//    so the portal knows the device again after a restart (it registers devices by public key).
// 2. Its token, from a file only its owner may read: a token readable by others is refused with
//    an error saying how to fix the mode, rather than used.

import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { clampPrivateKey } from "../proto/wireguard/crypto.js";
import { nodeX25519 } from "./x25519-node.js";

const KEY_FILE = "private.key";
const KEY_TEXT = /^[A-Za-z0-9+/]{43}=$/;

export interface DeviceIdentity {
  privateKey: Uint8Array;
  /** Base64, as the portal and WireGuard write keys. */
  publicKey: string;
}

/** Refuses a secret file that a group or others may read or write, or that another user owns. */
async function checkPrivate(path: string, what: string): Promise<void> {
  const info = await stat(path);
  if ((info.mode & 0o077) !== 0) {
    throw new Error(`${what} ${path} may be read by others (mode ${(info.mode & 0o777).toString(8)}): chmod 600 ${path}`);
  }
  if (typeof process.getuid === "function" && info.uid !== process.getuid()) {
    throw new Error(`${what} ${path} belongs to uid ${info.uid}, not to this user (uid ${process.getuid()})`);
  }
}

/** Reads the device's key from stateDir, or makes one there (0600) on first start. */
export async function loadOrCreateIdentity(stateDir: string): Promise<DeviceIdentity> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, KEY_FILE);
  let text: string;
  try {
    await checkPrivate(path, "the key file");
    text = (await readFile(path, "utf8")).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    text = Buffer.from(clampPrivateKey(randomBytes(32))).toString("base64");
    // wx: two starts racing get one key, and the loser reads the winner's on its next start.
    const file = await open(path, "wx", 0o600);
    try {
      await file.writeFile(`${text}\n`);
    } finally {
      await file.close();
    }
  }
  if (!KEY_TEXT.test(text)) throw new Error(`the key file ${path} does not hold a base64 WireGuard key`);
  const privateKey = clampPrivateKey(new Uint8Array(Buffer.from(text, "base64")));
  return { privateKey, publicKey: Buffer.from(nodeX25519.publicKey(privateKey)).toString("base64") };
}

/** Reads a token from a file only its owner may read; surrounding whitespace is dropped. */
export async function readTokenFile(path: string): Promise<string> {
  await checkPrivate(path, "the token file");
  const token = (await readFile(path, "utf8")).trim();
  if (token === "") throw new Error(`the token file ${path} is empty`);
  if (/\s/.test(token)) throw new Error(`the token file ${path} holds more than one word`);
  return token;
}
