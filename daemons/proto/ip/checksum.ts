// The Internet checksum (RFC 1071) and its incremental update (RFC 1624), over packet bytes.
//
// 1. onesComplementSum adds 16-bit big-endian words end-around-carry; an odd trailing byte is padded
//    with a zero byte (RFC 1071 §4.1's "add left-over byte"). internetChecksum is its complement.
// 2. pseudoHeaderSum is the part of a TCP, UDP or ICMPv6 checksum that covers the IP addresses
//    (RFC 9293 §3.1, RFC 768, RFC 8200 §8.1): a NAT that rewrites an address must update it.
// 3. checksumUpdate is RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), for any run of changed words, so a
//    rewrite costs a few additions instead of a pass over the payload. Eqn. 3 (not eqn. 2) because it
//    never turns a valid checksum into the 0x0000 / 0xFFFF confusion RFC 1624 §3 describes for eqn. 2.

/** The 16-bit one's complement sum of data[start, end), folded, added to `initial`. */
export function onesComplementSum(data: Uint8Array, start = 0, end = data.length, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (i < end) sum += data[i]! << 8;
  return fold(sum);
}

/** The Internet checksum of data[start, end): the complement of the one's complement sum. */
export function internetChecksum(data: Uint8Array, start = 0, end = data.length, initial = 0): number {
  return ~onesComplementSum(data, start, end, initial) & 0xffff;
}

/** Folds carries back into 16 bits (RFC 1071 §4.1). */
export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** The one's complement sum of the pseudo-header of a TCP, UDP or ICMPv6 checksum. */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, upperLayerLength: number): number {
  let sum = onesComplementSum(src) + onesComplementSum(dst) + protocol;
  // IPv6 carries a 32-bit length; IPv4 a 16-bit one. Either way it is added as 16-bit words.
  sum += (upperLayerLength >>> 16) + (upperLayerLength & 0xffff);
  return fold(sum);
}

/**
 * RFC 1624 eqn. 3: the checksum `checksum` after the words `before` became `after` (equal, even
 * lengths, word-aligned within the checksummed data).
 */
export function checksumUpdate(checksum: number, before: Uint8Array, after: Uint8Array): number {
  let sum = ~checksum & 0xffff;
  for (let i = 0; i + 1 < before.length; i += 2) {
    sum += ~((before[i]! << 8) | before[i + 1]!) & 0xffff;
    sum += (after[i]! << 8) | after[i + 1]!;
  }
  return ~fold(sum) & 0xffff;
}

/** RFC 1624 eqn. 3 for one 16-bit word. */
export function checksumUpdateWord(checksum: number, before: number, after: number): number {
  return ~fold((~checksum & 0xffff) + (~before & 0xffff) + (after & 0xffff)) & 0xffff;
}
