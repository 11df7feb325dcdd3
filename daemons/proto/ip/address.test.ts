import { describe, expect, it } from "vitest";
import { formatIp, parsePrefix, prefixContains, unmapPrefix } from "./address.js";

const unmapped = (text: string): string => {
  const p = unmapPrefix(parsePrefix(text)!);
  return `${formatIp(p.address)}/${p.length}`;
};

describe("unmapPrefix", () => {
  it("turns IPv4-mapped prefixes of /96 and longer into the IPv4 prefix they map", () => {
    expect(unmapped("::ffff:10.0.0.0/104")).toBe("10.0.0.0/8");
    expect(unmapped("::ffff:10.1.2.3/128")).toBe("10.1.2.3/32");
    expect(unmapped("::ffff:0.0.0.0/96")).toBe("0.0.0.0/0");
  });

  it("leaves shorter mapped prefixes, other IPv6 and IPv4 prefixes as they are", () => {
    // /95 also holds addresses outside ::ffff:0:0/96, so it is an IPv6 prefix.
    expect(unmapped("::ffff:0.0.0.0/95")).toBe("::ffff:0:0/95");
    expect(unmapped("::fffe:10.0.0.0/104")).toBe("::fffe:a00:0/104");
    expect(unmapped("64:ff9b::10.0.0.0/104")).toBe("64:ff9b::a00:0/104");
    expect(unmapped("10.0.0.0/8")).toBe("10.0.0.0/8");
  });

  it("an unmapped prefix holds exactly the IPv4 addresses whose mapped form the original holds", () => {
    const mapped = parsePrefix("::ffff:192.168.0.0/112")!;
    const v4 = unmapPrefix(mapped);
    for (const last of [0, 1, 255]) {
      for (const third of [0, 1, 255]) {
        const a = Uint8Array.of(192, 168 + (third === 255 ? 1 : 0), third, last);
        const m = new Uint8Array(16);
        m.set([0xff, 0xff], 10);
        m.set(a, 12);
        expect(prefixContains(v4, a)).toBe(prefixContains(mapped, m));
      }
    }
  });
});
