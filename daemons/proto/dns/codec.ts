// DNS messages over UDP (RFC 1035 §4.1; AAAA from RFC 3596), decoded and encoded.
//
// 1. Decoding: the 12-octet header, then QDCOUNT questions and the answer, authority and additional
//    records. Names go through name.ts (pointers backwards only, label and name limits). A, AAAA and
//    PTR data are decoded and must fill RDLENGTH exactly; any other type is kept verbatim as
//    opaque bytes (names inside such data that use pointers point into the original message).
//    Octets after the last record are ignored. Decoding never throws: a datagram that is not a
//    message is an error value, carrying the header when its 12 octets were there, so a server can
//    still answer FORMERR to the right ID.
// 2. Encoding: any message, names compressed against the names written before them.
// 3. Responses: the header a server sends back (ID, opcode, RD and the question echoed; QR and RA
//    set) with an RCODE and records.

import { formatAddress } from "../stun/attributes.js";
import { parseIpv4, parseIpv6 } from "../wireguard/uapi.js";
import {
  A_RDATA_SIZE, AAAA_RDATA_SIZE, FLAG_AA, FLAG_QR, FLAG_RA, FLAG_RD, FLAG_TC, HEADER_OFFSET_ANCOUNT,
  HEADER_OFFSET_ARCOUNT, HEADER_OFFSET_FLAGS, HEADER_OFFSET_ID, HEADER_OFFSET_NSCOUNT, HEADER_OFFSET_QDCOUNT,
  HEADER_SIZE, OPCODE_MASK, OPCODE_SHIFT, QUESTION_FIXED_SIZE, RCODE_MASK, RR_FIXED_SIZE, RR_OFFSET_CLASS,
  RR_OFFSET_RDLENGTH, RR_OFFSET_TTL, RR_OFFSET_TYPE, TYPE_A, TYPE_AAAA, TYPE_PTR, Z_MASK, Z_SHIFT,
} from "./constants.js";
import { formatName, MessageWriter, parseName, readName, type NameError } from "./name.js";

/** The header fields of a message (RFC 1035 §4.1.1), counts aside: the sections carry those. */
export interface DnsHeader {
  id: number;
  /** True for a response. */
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  /** The three bits after RA (AD and CD since RFC 4035), carried through as they are. */
  z: number;
  rcode: number;
}

/** One question; `name` in text form (name.ts), case as sent. */
export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

/** Record data: decoded for A, AAAA and PTR, verbatim octets for every other type. */
export type DnsRecordData =
  | { kind: "a"; address: string }
  | { kind: "aaaa"; address: string }
  | { kind: "ptr"; name: string }
  | { kind: "opaque"; bytes: Uint8Array };

/** One resource record (RFC 1035 §4.1.3); to encode, `data` must be of the kind its `type` decodes to. */
export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  /** Seconds, as the 32 bits on the wire read unsigned. */
  ttl: number;
  data: DnsRecordData;
}

/** A whole message. */
export interface DnsMessage extends DnsHeader {
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

/** Why a datagram is not a DNS message. */
export type DnsDecodeError = NameError | "short_header" | "bad_rdata";

export type DnsDecodeResult =
  | { ok: true; message: DnsMessage }
  | { ok: false; error: DnsDecodeError; header?: DnsHeader };

// --- 1. Decoding ---

const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
const u32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

/** The header of a datagram, or undefined when it is shorter than a header. */
export function decodeDnsHeader(bytes: Uint8Array): DnsHeader | undefined {
  if (bytes.length < HEADER_SIZE) return undefined;
  const flags = u16(bytes, HEADER_OFFSET_FLAGS);
  return {
    id: u16(bytes, HEADER_OFFSET_ID),
    qr: (flags & FLAG_QR) !== 0,
    opcode: (flags >>> OPCODE_SHIFT) & OPCODE_MASK,
    aa: (flags & FLAG_AA) !== 0,
    tc: (flags & FLAG_TC) !== 0,
    rd: (flags & FLAG_RD) !== 0,
    ra: (flags & FLAG_RA) !== 0,
    z: (flags >>> Z_SHIFT) & Z_MASK,
    rcode: flags & RCODE_MASK,
  };
}

type Step<T> = { ok: true; value: T; next: number } | { ok: false; error: DnsDecodeError };

function readQuestion(bytes: Uint8Array, offset: number): Step<DnsQuestion> {
  const name = readName(bytes, offset);
  if (!name.ok) return name;
  const at = name.next;
  if (at + QUESTION_FIXED_SIZE > bytes.length) return { ok: false, error: "truncated" };
  return { ok: true, value: { name: formatName(name.labels), type: u16(bytes, at), class: u16(bytes, at + 2) }, next: at + QUESTION_FIXED_SIZE };
}

function readRecord(bytes: Uint8Array, offset: number): Step<DnsRecord> {
  const name = readName(bytes, offset);
  if (!name.ok) return name;
  const at = name.next;
  if (at + RR_FIXED_SIZE > bytes.length) return { ok: false, error: "truncated" };
  const type = u16(bytes, at + RR_OFFSET_TYPE);
  const rdlength = u16(bytes, at + RR_OFFSET_RDLENGTH);
  const start = at + RR_FIXED_SIZE;
  const end = start + rdlength;
  if (end > bytes.length) return { ok: false, error: "truncated" };
  let data: DnsRecordData;
  if (type === TYPE_A || type === TYPE_AAAA) {
    if (rdlength !== (type === TYPE_A ? A_RDATA_SIZE : AAAA_RDATA_SIZE)) return { ok: false, error: "bad_rdata" };
    data = { kind: type === TYPE_A ? "a" : "aaaa", address: formatAddress(bytes.subarray(start, end)) };
  } else if (type === TYPE_PTR) {
    const target = readName(bytes, start);
    if (!target.ok) return target;
    if (target.next !== end) return { ok: false, error: "bad_rdata" };
    data = { kind: "ptr", name: formatName(target.labels) };
  } else {
    data = { kind: "opaque", bytes: bytes.slice(start, end) };
  }
  const record: DnsRecord = { name: formatName(name.labels), type, class: u16(bytes, at + RR_OFFSET_CLASS), ttl: u32(bytes, at + RR_OFFSET_TTL), data };
  return { ok: true, value: record, next: end };
}

/** Decodes one DNS message; never throws. */
export function decodeDnsMessage(bytes: Uint8Array): DnsDecodeResult {
  const header = decodeDnsHeader(bytes);
  if (header === undefined) return { ok: false, error: "short_header" };
  const fail = (error: DnsDecodeError): DnsDecodeResult => ({ ok: false, error, header });
  let offset = HEADER_SIZE;
  const questions: DnsQuestion[] = [];
  for (let i = u16(bytes, HEADER_OFFSET_QDCOUNT); i > 0; i--) {
    const step = readQuestion(bytes, offset);
    if (!step.ok) return fail(step.error);
    questions.push(step.value);
    offset = step.next;
  }
  const sections: DnsRecord[][] = [];
  for (const countAt of [HEADER_OFFSET_ANCOUNT, HEADER_OFFSET_NSCOUNT, HEADER_OFFSET_ARCOUNT]) {
    const records: DnsRecord[] = [];
    for (let i = u16(bytes, countAt); i > 0; i--) {
      const step = readRecord(bytes, offset);
      if (!step.ok) return fail(step.error);
      records.push(step.value);
      offset = step.next;
    }
    sections.push(records);
  }
  return { ok: true, message: { ...header, questions, answers: sections[0]!, authorities: sections[1]!, additionals: sections[2]! } };
}

// --- 2. Encoding ---

function labelsOf(text: string): string[] {
  const labels = parseName(text);
  if (labels === undefined) throw new RangeError(`${JSON.stringify(text)} is not a DNS name`);
  return labels;
}

function addressOf(text: string, size: number): Uint8Array {
  const bytes = size === A_RDATA_SIZE ? parseIpv4(text) : parseIpv6(text);
  if (bytes === undefined || bytes.length !== size) throw new RangeError(`${text} is not an IPv${size === A_RDATA_SIZE ? 4 : 6} address`);
  return bytes;
}

function writeRecord(w: MessageWriter, record: DnsRecord): void {
  w.name(labelsOf(record.name));
  w.u16(record.type);
  w.u16(record.class);
  w.u32(record.ttl);
  const rdlengthAt = w.length;
  w.u16(0);
  const { data } = record;
  switch (data.kind) {
    case "a":
      w.bytes(addressOf(data.address, A_RDATA_SIZE));
      break;
    case "aaaa":
      w.bytes(addressOf(data.address, AAAA_RDATA_SIZE));
      break;
    case "ptr":
      w.name(labelsOf(data.name));
      break;
    case "opaque":
      w.bytes(data.bytes);
      break;
  }
  w.patchU16(rdlengthAt, w.length - rdlengthAt - 2);
}

/** Encodes a message; throws on a value no message can hold (a bad name or address: a bug). */
export function encodeDnsMessage(message: DnsMessage): Uint8Array {
  const w = new MessageWriter();
  w.u16(message.id);
  w.u16(
    (message.qr ? FLAG_QR : 0) | ((message.opcode & OPCODE_MASK) << OPCODE_SHIFT) | (message.aa ? FLAG_AA : 0) |
      (message.tc ? FLAG_TC : 0) | (message.rd ? FLAG_RD : 0) | (message.ra ? FLAG_RA : 0) |
      ((message.z & Z_MASK) << Z_SHIFT) | (message.rcode & RCODE_MASK),
  );
  w.u16(message.questions.length);
  w.u16(message.answers.length);
  w.u16(message.authorities.length);
  w.u16(message.additionals.length);
  for (const q of message.questions) {
    w.name(labelsOf(q.name));
    w.u16(q.type);
    w.u16(q.class);
  }
  for (const section of [message.answers, message.authorities, message.additionals]) {
    for (const record of section) writeRecord(w, record);
  }
  return w.finish();
}

// --- 3. Queries and responses ---

/** A standard query for one question, recursion desired unless told. */
export function queryMessage(id: number, question: DnsQuestion, options: { rd?: boolean } = {}): DnsMessage {
  return {
    id, qr: false, opcode: 0, aa: false, tc: false, rd: options.rd ?? true, ra: false, z: 0, rcode: 0,
    questions: [question], answers: [], authorities: [], additionals: [],
  };
}

/** What a response adds to the query it answers. */
export interface ResponseContent {
  rcode: number;
  answers?: DnsRecord[];
  authorities?: DnsRecord[];
  additionals?: DnsRecord[];
  /** Authoritative answer; false unless told. */
  aa?: boolean;
}

/**
 * The response to `query`: its ID, opcode, RD and questions echoed, QR and RA set; `query` may be
 * a bare header (a query whose questions could not be read), which gets no question back.
 */
export function responseMessage(query: DnsHeader & { questions?: DnsQuestion[] }, content: ResponseContent): DnsMessage {
  return {
    id: query.id, qr: true, opcode: query.opcode, aa: content.aa ?? false, tc: false, rd: query.rd, ra: true, z: 0, rcode: content.rcode,
    questions: query.questions ?? [], answers: content.answers ?? [], authorities: content.authorities ?? [],
    additionals: content.additionals ?? [],
  };
}
