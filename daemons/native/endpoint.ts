// UDP endpoints as udpRecv writes and udpSend reads them: ADDRESS_SIZE (20) bytes per packet in one
// Uint8Array, so a batch carries its peers' addresses without an object per packet.
//
//   [0] family: 4 or 6   [1] zero   [2..3] port, big-endian   [4..19] address (IPv4 in 4..7, rest zero)
//
// IPv6 scope ids and flow labels are not carried. The text helpers allocate: they are for
// configuration and tests, not the per-packet path, which copies endpoint bytes as they are.

export const ADDRESS_SIZE = 20;

/** A UDP endpoint in its text form. */
export interface Endpoint {
  family: 4 | 6;
  address: string;
  port: number;
}

function parseIpv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = parts.map((part) => (/^(0|[1-9][0-9]{0,2})$/.test(part) ? Number(part) : 256));
  return bytes.every((b) => b <= 255) ? bytes : undefined;
}

function parseIpv6(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string | undefined): number[] | undefined => {
    if (!half) return [];
    const out: number[] = [];
    for (const group of half.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
      out.push(parseInt(group, 16));
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const words = [...head, ...new Array<number>(missing).fill(0), ...tail];
  return words.flatMap((word) => [word >> 8, word & 0xff]);
}

/** Writes endpoint `index` of `addresses` from its text form; throws on an address that is not one. */
export function writeEndpoint(addresses: Uint8Array, index: number, endpoint: Endpoint): void {
  const bytes = endpoint.family === 4 ? parseIpv4(endpoint.address) : parseIpv6(endpoint.address);
  if (!bytes) throw new TypeError(`writeEndpoint: ${endpoint.address} is not an IPv${endpoint.family} address`);
  if (!Number.isInteger(endpoint.port) || endpoint.port < 0 || endpoint.port > 65535) {
    throw new RangeError(`writeEndpoint: port ${endpoint.port} is out of range`);
  }
  const at = index * ADDRESS_SIZE;
  addresses.fill(0, at, at + ADDRESS_SIZE);
  addresses[at] = endpoint.family;
  addresses[at + 2] = endpoint.port >> 8;
  addresses[at + 3] = endpoint.port & 0xff;
  addresses.set(bytes, at + 4);
}

/** Reads endpoint `index` of `addresses` into text form; undefined if it holds no family. */
export function readEndpoint(addresses: Uint8Array, index: number): Endpoint | undefined {
  const at = index * ADDRESS_SIZE;
  const family = addresses[at];
  const port = ((addresses[at + 2] ?? 0) << 8) | (addresses[at + 3] ?? 0);
  if (family === 4) return { family, address: addresses.subarray(at + 4, at + 8).join("."), port };
  if (family !== 6) return undefined;
  const words: string[] = [];
  for (let i = 0; i < 8; i++) {
    words.push((((addresses[at + 4 + 2 * i] ?? 0) << 8) | (addresses[at + 5 + 2 * i] ?? 0)).toString(16));
  }
  // The longest run of two or more zero groups becomes "::" (RFC 5952).
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && words[j] === "0") j++;
    if (j - i > bestLength) [best, bestLength] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const address =
    best < 0 ? words.join(":") : `${words.slice(0, best).join(":")}::${words.slice(best + bestLength).join(":")}`;
  return { family, address, port };
}
