// DNS names (RFC 1035 §3.1, §4.1.4) in their three forms:
//
// 1. Labels: what the code works with, one string per label, each character one octet (0-255),
//    the root label left out. Octets other than ASCII letters keep their value, so a name is
//    compared and matched without any text encoding in the way.
// 2. Text: the presentation form people and resources use, labels joined by dots, no trailing dot,
//    "." for the root. A dot or backslash inside a label is escaped as \. and \\, and an octet
//    outside printable ASCII as \DDD (RFC 1035 §5.1), so text and labels map one to one.
// 3. Wire: length-prefixed labels ending in the root label, possibly ending in a pointer to an
//    earlier name. Reading follows pointers only backwards (which also rules out loops), reads at
//    most NAME_POINTERS_MAX of them, and refuses names over 255 octets and the reserved label types
//    01 and 10 (a length octet of 64 or more is one of those, so no label is over 63 octets).
//    Writing compresses against the names already written in the message.
//
// Reading network input never throws; it returns a typed error. Writing our own names throws on a
// name that cannot exist (a bug, not input).

import {
  LABEL_MAX, LABEL_TYPE_MASK, LABEL_TYPE_POINTER, NAME_MAX, NAME_POINTERS_MAX, POINTER_OFFSET_MASK, POINTER_SIZE,
} from "./constants.js";

/** Why a name could not be read from a message. */
export type NameError = "truncated" | "name_too_long" | "bad_label_type" | "bad_pointer";

export type NameRead = { ok: true; labels: string[]; next: number } | { ok: false; error: NameError };

/** Octets the name takes on the wire uncompressed: a length octet per label, the labels, the root. */
export function nameWireLength(labels: readonly string[]): number {
  let length = 1;
  for (const label of labels) length += 1 + label.length;
  return length;
}

/** ASCII lowercase of one label (RFC 4343: DNS case-insensitivity is ASCII only). */
export function lowerLabel(label: string): string {
  let out = "";
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    out += c >= 0x41 && c <= 0x5a ? String.fromCharCode(c + 0x20) : label[i];
  }
  return out;
}

/** The name's key for maps: lowercase labels in text form. */
export function nameKey(labels: readonly string[]): string {
  return formatName(labels.map(lowerLabel));
}

// --- 2. Text ---

/** The presentation form of labels: escaped, dot-joined, "." for the root. */
export function formatName(labels: readonly string[]): string {
  if (labels.length === 0) return ".";
  return labels.map(formatLabel).join(".");
}

function formatLabel(label: string): string {
  let out = "";
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    if (c === 0x2e || c === 0x5c) out += `\\${label[i]}`;
    else if (c > 0x20 && c < 0x7f) out += label[i];
    else out += `\\${String(c).padStart(3, "0")}`;
  }
  return out;
}

/**
 * The labels of a name in text form (one trailing dot allowed, "." the root); undefined when the
 * text is no valid name: an empty label, a bad escape, a character above one octet, a label over 63
 * octets or a name over 255.
 */
export function parseName(text: string): string[] | undefined {
  if (text === ".") return [];
  const labels: string[] = [];
  let label = "";
  let i = 0;
  let dotLast = false;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === ".") {
      if (label === "") return undefined;
      labels.push(label);
      label = "";
      dotLast = true;
      i++;
      continue;
    }
    dotLast = false;
    if (ch === "\\") {
      const digits = /^[0-9]{3}/.exec(text.slice(i + 1, i + 4));
      if (digits !== null) {
        const value = Number(digits[0]);
        if (value > 255) return undefined;
        label += String.fromCharCode(value);
        i += 4;
      } else if (i + 1 < text.length) {
        label += text[i + 1];
        i += 2;
      } else {
        return undefined;
      }
    } else {
      label += ch;
      i++;
    }
    if (label.charCodeAt(label.length - 1) > 0xff) return undefined;
  }
  if (label !== "") labels.push(label);
  else if (!dotLast) return undefined; // the empty text
  if (labels.some((l) => l.length > LABEL_MAX) || nameWireLength(labels) > NAME_MAX) return undefined;
  return labels;
}

// --- 3. Wire ---

/** Reads the name at `offset` of `message`; `next` is the offset after it (after its first pointer, if any). */
export function readName(message: Uint8Array, offset: number): NameRead {
  const labels: string[] = [];
  let position = offset;
  let next = -1;
  let length = 1;
  let pointers = 0;
  for (;;) {
    if (position >= message.length) return { ok: false, error: "truncated" };
    const octet = message[position]!;
    const kind = octet & LABEL_TYPE_MASK;
    if (kind === LABEL_TYPE_POINTER) {
      if (position + POINTER_SIZE > message.length) return { ok: false, error: "truncated" };
      const target = ((octet << 8) | message[position + 1]!) & POINTER_OFFSET_MASK;
      // Only backwards: each jump lands strictly earlier, so no chain can loop.
      if (target >= position || ++pointers > NAME_POINTERS_MAX) return { ok: false, error: "bad_pointer" };
      if (next < 0) next = position + POINTER_SIZE;
      position = target;
      continue;
    }
    if (kind !== 0) return { ok: false, error: "bad_label_type" };
    if (octet === 0) break;
    length += 1 + octet;
    if (length > NAME_MAX) return { ok: false, error: "name_too_long" };
    if (position + 1 + octet > message.length) return { ok: false, error: "truncated" };
    labels.push(String.fromCharCode(...message.subarray(position + 1, position + 1 + octet)));
    position += 1 + octet;
  }
  return { ok: true, labels, next: next < 0 ? position + 1 : next };
}

/** A growing message being written, with the offsets of the names in it for compression. */
export class MessageWriter {
  private buffer = new Uint8Array(512);
  length = 0;
  /**
   * Text of a name suffix → where it starts; only offsets a pointer can reach. Case counts, so a
   * name is read back exactly as it was written (0x20-randomized questions stay as asked).
   */
  private readonly suffixes = new Map<string, number>();

  private reserve(n: number): void {
    if (this.length + n <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }

  u8(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value & 0xff;
  }

  u16(value: number): void {
    this.u8(value >>> 8);
    this.u8(value);
  }

  u32(value: number): void {
    this.u16(value >>> 16);
    this.u16(value & 0xffff);
  }

  bytes(value: Uint8Array): void {
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
  }

  /** Overwrites a 16-bit field written earlier (an RDLENGTH known only afterwards). */
  patchU16(at: number, value: number): void {
    this.buffer[at] = (value >>> 8) & 0xff;
    this.buffer[at + 1] = value & 0xff;
  }

  /** Writes a name, as a pointer to an earlier copy of its longest known suffix when `compress`. */
  name(labels: readonly string[], compress = true): void {
    if (labels.some((l) => l.length === 0 || l.length > LABEL_MAX) || nameWireLength(labels) > NAME_MAX) {
      throw new RangeError(`${formatName(labels)} is not a DNS name`);
    }
    for (let i = 0; i < labels.length; i++) {
      const key = formatName(labels.slice(i));
      const earlier = compress ? this.suffixes.get(key) : undefined;
      if (earlier !== undefined) {
        this.u16((LABEL_TYPE_POINTER << 8) | earlier);
        return;
      }
      if (this.length <= POINTER_OFFSET_MASK && !this.suffixes.has(key)) this.suffixes.set(key, this.length);
      const label = labels[i]!;
      this.u8(label.length);
      for (let k = 0; k < label.length; k++) this.u8(label.charCodeAt(k));
    }
    this.u8(0);
  }

  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}
