// The wg-quick file parser: a realistic file read to exact values, every refusal with its line,
// the spellings wg(8) and wg-quick(8) accept, a round trip of random configurations through a
// writer of our own and through formatWgQuick, and a fuzz pass, since the file is user input.
//
// Expected values come from outside the code under test: key bytes from Buffer (as hex), addresses
// from test/support/ip.ts, canonical IPv6 text from node's URL parser.

import { beforeEach, describe, expect, it } from "vitest";
import { hex } from "../../../test/support/bytes.js";
import { ip } from "../../../test/support/ip.js";
import { reportSeedOnFailure, Rng, rng } from "../../../test/support/prng.js";
import type { DeviceUpdate, PeerUpdate, Prefix } from "./uapi.js";
import { formatWgQuick, parseWgQuick, type WgQuickConfig, type WgQuickParsed } from "./wg-quick.js";

beforeEach(reportSeedOnFailure);

// The keys of the wg(8) man page example; hex from Buffer.from(key, "base64").
const PRIV = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const PRIV_HEX = "c809f3e5317e9575c9b5ed78b638b7ce530dabe85ddab614220241801ddf0669";
const PUB1 = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const PUB1_HEX = "c53201039adba14be71f886da1d8dbe9eebded08cb111b75340078999aa9f038";
const PUB2 = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";
const PUB2_HEX = "4eb32f4a83f88d842563a448cc181bb2c42a637bf12363e2fb2ef594e5965d7d";
const PSK = "GIUVCT6VL18i6GXO8wEucvi18LWYrAMJ1drM47cPz1I=";
const PSK_HEX = "188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52";
const ZERO_KEY = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

const prefix = (address: string, length: number): Prefix => ({ family: address.includes(":") ? 6 : 4, address: ip(address), length });

function peer(publicKey: Uint8Array, fields: Partial<PeerUpdate> = {}): PeerUpdate {
  return { publicKey, remove: false, updateOnly: false, replaceAllowedIps: true, allowedIps: [], ...fields };
}

function parsed(text: string): WgQuickConfig {
  const result = parseWgQuick(text);
  if (!result.ok) throw new Error(`line ${result.line}: ${result.reason}`);
  return result.value;
}

const REALISTIC = `# wg0 on the office gateway
[Interface]
PrivateKey = ${PRIV}
ListenPort = 51820
Address = 10.192.122.1/24, fd42:42:42::1/64
FwMark = 0xca6c
MTU = 1420
DNS = 10.192.122.1, fd42:42:42::1
PostUp = iptables -A FORWARD -i %i -j ACCEPT; iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE

[Peer]  # laptop
PublicKey = ${PUB1}
PresharedKey = ${PSK}
AllowedIPs = 10.192.122.3/32, 10.192.124.1/24
AllowedIPs = fd42:42:42::3/128
Endpoint = 192.95.5.67:1234
PersistentKeepalive = 25

[Peer]
PublicKey = ${PUB2}
AllowedIPs = 10.192.122.4/32, 192.168.0.0/16
Endpoint = [2607:5300:60:6b0:0:0:c05f:543]:2468
`;

describe("wg-quick configuration files", () => {
  it("reads a realistic file to exact values", () => {
    const expected: WgQuickConfig = {
      update: {
        replacePeers: true,
        privateKey: hex(PRIV_HEX),
        listenPort: 51820,
        fwmark: 0xca6c,
        peers: [
          peer(hex(PUB1_HEX), {
            presharedKey: hex(PSK_HEX),
            endpoint: { address: "192.95.5.67", port: 1234 },
            persistentKeepaliveInterval: 25,
            // 10.192.124.1/24 is masked, as the kernel and wireguard-go mask allowed IPs.
            allowedIps: [prefix("10.192.122.3", 32), prefix("10.192.124.0", 24), prefix("fd42:42:42::3", 128)],
          }),
          peer(hex(PUB2_HEX), {
            endpoint: { address: "2607:5300:60:6b0::c05f:543", port: 2468 },
            allowedIps: [prefix("10.192.122.4", 32), prefix("192.168.0.0", 16)],
          }),
        ],
      },
      // Interface addresses keep their host bits: 10.192.122.1/24 is the address and its subnet.
      addresses: [prefix("10.192.122.1", 24), prefix("fd42:42:42::1", 64)],
      mtu: 1420,
      ignored: [
        "line 8: DNS is a wg-quick feature `wardline wg` does not apply; ignored",
        "line 9: PostUp is a wg-quick feature `wardline wg` does not apply; ignored",
      ],
    };
    expect(parseWgQuick(REALISTIC)).toStrictEqual({ ok: true, value: expected });
  });

  it("writes it back as `wg showconf` would, and reads that to the same values", () => {
    const config = parsed(REALISTIC);
    const text = formatWgQuick(config);
    expect(text).toBe(`[Interface]
PrivateKey = ${PRIV}
ListenPort = 51820
FwMark = 0xca6c
Address = 10.192.122.1/24, fd42:42:42::1/64
MTU = 1420

[Peer]
PublicKey = ${PUB1}
PresharedKey = ${PSK}
AllowedIPs = 10.192.122.3/32, 10.192.124.0/24, fd42:42:42::3/128
Endpoint = 192.95.5.67:1234
PersistentKeepalive = 25

[Peer]
PublicKey = ${PUB2}
AllowedIPs = 10.192.122.4/32, 192.168.0.0/16
Endpoint = [2607:5300:60:6b0::c05f:543]:2468
`);
    expect(parsed(text)).toStrictEqual({ ...config, ignored: [] });
  });

  it("accepts the spellings wg(8) and wg-quick(8) accept", () => {
    const text = [
      "\uFEFF  # a byte-order mark and a comment",
      "\t[interface]\t",
      "privatekey=" + ZERO_KEY, // all zero: no private key, as in the UAPI
      "LISTENPORT   =   0",
      "fwmark = off",
      "Address = 10.0.0.2",
      "address=fd00::2,10.0.0.3/8 , 192.0.2.1/32# no space before the comment",
      "mtu = 1280\r",
      "Table = off",
      "SaveConfig = true",
      "PreUp = echo #not-a-command",
      "PreDown =",
      "PostDown = true",
      "",
      "[PEER]",
      `PUBLICKEY = ${PUB1}`,
      "allowedips = 0.0.0.0/0, ::/0",
      "AllowedIPs = 10.9.9.9",
      "AllowedIPs = fd00::9",
      "AllowedIPs =",
      "Endpoint = 1.2.3.4:5",
      "Endpoint = [fe80::1%eth0]:51820", // the later value wins; the zone is dropped
      "PersistentKeepalive = OFF",
      "[Peer]",
      `PublicKey=${PUB2}`,
      "PersistentKeepalive = 65535",
    ].join("\n");
    const config = parsed(text);
    expect(config.update).toStrictEqual({
      replacePeers: true,
      privateKey: null,
      listenPort: 0,
      fwmark: 0,
      peers: [
        peer(hex(PUB1_HEX), {
          allowedIps: [prefix("0.0.0.0", 0), prefix("::", 0), prefix("10.9.9.9", 32), prefix("fd00::9", 128)],
          endpoint: { address: "fe80::1", port: 51820 },
          persistentKeepaliveInterval: 0,
        }),
        peer(hex(PUB2_HEX), { persistentKeepaliveInterval: 65535 }),
      ],
    } satisfies DeviceUpdate);
    expect(config.addresses).toStrictEqual([prefix("10.0.0.2", 32), prefix("fd00::2", 128), prefix("10.0.0.3", 8), prefix("192.0.2.1", 32)]);
    expect(config.mtu).toBe(1280);
    expect(config.ignored.map((w) => w.slice(0, w.indexOf(" is ")))).toEqual([
      "line 9: Table", "line 10: SaveConfig", "line 11: PreUp", "line 12: PreDown", "line 13: PostDown",
    ]);
  });

  it("leaves out what the file leaves out; [Peer] may come before [Interface]", () => {
    expect(parsed("[Interface]\n")).toStrictEqual({ update: { replacePeers: true, peers: [] }, addresses: [], ignored: [] });
    expect(parsed(`[Peer]\nPublicKey = ${PUB1}\n[Interface]\nListenPort = 1\n`).update).toStrictEqual({
      replacePeers: true,
      listenPort: 1,
      peers: [peer(hex(PUB1_HEX))],
    });
    expect(parsed("[Interface]\nFwMark = 0xFFFFFFFF\nMTU = 576\nAddress = 10.0.0.1/32\n").update.fwmark).toBe(0xffffffff);
    expect(parsed("[Interface]\nFwMark = 4294967295\n").update.fwmark).toBe(0xffffffff);
  });

  it("refuses each kind of error with its line and a reason naming the key", () => {
    const I = "[Interface]\n";
    const P = `[Peer]\nPublicKey = ${PUB1}\n`;
    const cases: [text: string, line: number, reason: RegExp][] = [
      // Structure.
      ["", 1, /^no \[Interface\] section/],
      [`# only a comment\n${P}`, 1, /^no \[Interface\] section/],
      [`${I}[Interfaces]\n`, 2, /^unknown section "\[Interfaces\]"/],
      [`${I}[Peer\n`, 2, /^unknown section "\[Peer"/],
      [`${I}[ Peer ]\n`, 2, /^unknown section/],
      [`${I}${P}[Interface]\n`, 4, /^\[Interface\] appears again; the first is at line 1$/],
      ["ListenPort = 1\n[Interface]\n", 1, /^ListenPort is outside any section/],
      [`${I}ListenPort 51820\n`, 2, /is neither a \[Section\] header nor Key = Value/],
      [`${I} = 5\n`, 2, /^no key before "="/],
      // Unknown keys, and keys in the wrong section.
      [`${I}ListenPrt = 1\n`, 2, /^unknown key "ListenPrt" in \[Interface\]$/],
      [`${I}${P}Foo = bar\n`, 4, /^unknown key "Foo" in \[Peer\]$/],
      [`${I}PublicKey = ${PUB1}\n`, 2, /^PublicKey belongs in a \[Peer\] section, not \[Interface\]$/],
      [`${I}${P}listenport = 1\n`, 4, /^ListenPort belongs in the \[Interface\] section, not \[Peer\]$/],
      [`${I}${P}DNS = 1.1.1.1\n`, 4, /^DNS belongs in the \[Interface\] section/],
      // Keys.
      [`${I}PrivateKey = ${PRIV.slice(0, 10)}!${PRIV.slice(11)}\n`, 2, /^PrivateKey: ".*" is not valid base64$/],
      [`${I}PrivateKey = ${PRIV.slice(0, -2)}l=\n`, 2, /^PrivateKey: ".*" is not valid base64$/], // non-zero trailing bits
      [`${I}PrivateKey = ${PRIV.slice(0, -1)}\n`, 2, /^PrivateKey: ".*" is not valid base64$/],
      [`${I}PrivateKey = AAAA\n`, 2, /^PrivateKey: decodes to 3 bytes; a key is 32/],
      [`${I}PrivateKey =\n`, 2, /^PrivateKey: no value/],
      [`${I}[Peer]\nPublicKey = ${PUB1.slice(0, -1)}A\n`, 3, /^PublicKey: decodes to 33 bytes; a key is 32/], // 44 characters, no padding
      [`${I}${P}PresharedKey = -${PSK.slice(1)}\n`, 4, /^PresharedKey: ".*" is not valid base64$/],
      [`${I}${P}PresharedKey = Zm9vYmFy\n`, 4, /^PresharedKey: decodes to 6 bytes/],
      // Peers.
      [`${I}${P}\n[Peer]\nPublicKey = ${PUB1}\n`, 6, /^PublicKey xTIBA5.* is already the key of the \[Peer\] at line 2$/],
      [`${I}${P}PublicKey = ${PUB2}\n`, 4, /^PublicKey appears twice in the \[Peer\] at line 2; the first is at line 3$/],
      [`${I}[Peer]\nAllowedIPs = 10.0.0.0/8\n${P}`, 2, /^\[Peer\] has no PublicKey$/],
      [`${I}${P}[Peer] # last\nEndpoint = 1.2.3.4:5\n`, 4, /^\[Peer\] has no PublicKey$/],
      // Prefixes.
      [`${I}Address = 10.0.0.1/33\n`, 2, /^Address: "10.0.0.1\/33" is not an IP address/],
      [`${I}Address = 10.0.0.256\n`, 2, /^Address: "10.0.0.256"/],
      [`${I}Address = fd00::1/129\n`, 2, /^Address: "fd00::1\/129"/],
      [`${I}Address = fe80::1%eth0/64\n`, 2, /^Address: "fe80::1%eth0\/64"/],
      [`${I}Address = 10.0.0.1/24,\n`, 2, /^Address: ""/],
      [`${I}${P}AllowedIPs = 10.0.0.0/8, 10.1.0.0/-1\n`, 4, /^AllowedIPs: "10.1.0.0\/-1" is not an IP prefix/],
      [`${I}${P}AllowedIPs = 10.0.0.0/8,,10.1.0.0/16\n`, 4, /^AllowedIPs: "" is not an IP prefix/],
      [`${I}${P}AllowedIPs = ::1::2/64\n`, 4, /^AllowedIPs: "::1::2\/64"/],
      [`${I}${P}AllowedIPs = 10.0.0.0 /8\n`, 4, /^AllowedIPs: "10.0.0.0 \/8"/],
      // Ports and numbers.
      [`${I}ListenPort = 65536\n`, 2, /^ListenPort: "65536" is not a port/],
      [`${I}ListenPort = -1\n`, 2, /^ListenPort: "-1" is not a port/],
      [`${I}ListenPort = 0x10\n`, 2, /^ListenPort: "0x10" is not a port/],
      [`${I}ListenPort =\n`, 2, /^ListenPort: "" is not a port/],
      [`${I}FwMark = 0x100000000\n`, 2, /^FwMark: "0x100000000" is not a 32-bit number/],
      [`${I}FwMark = 4294967296\n`, 2, /^FwMark: "4294967296"/],
      [`${I}FwMark = 0xg\n`, 2, /^FwMark: "0xg"/],
      [`${I}MTU = 575\n`, 2, /^MTU: "575" is not a number from 576 to 65535$/],
      [`${I}MTU = 65536\n`, 2, /^MTU: "65536"/],
      [`${I}MTU = 1420 bytes\n`, 2, /^MTU: "1420 bytes"/],
      [`${I}MTU = 1279\nAddress = 10.0.0.1/24\nAddress = fd00::1/64\n`, 2, /^MTU: 1279 is below 1280, the IPv6 minimum, and line 4 gives an IPv6 Address$/],
      [`${I}${P}PersistentKeepalive = 65536\n`, 4, /^PersistentKeepalive: "65536" is not a number of seconds/],
      [`${I}${P}PersistentKeepalive = 25s\n`, 4, /^PersistentKeepalive: "25s"/],
      // Endpoints.
      [`${I}${P}Endpoint = vpn.example.com:51820\n`, 4, /^Endpoint: "vpn.example.com" is a hostname; only IP literals are accepted/],
      [`${I}${P}Endpoint = localhost:51820\n`, 4, /^Endpoint: "localhost" is a hostname; only IP literals are accepted/],
      [`${I}${P}Endpoint = 1.2.3.4\n`, 4, /^Endpoint: "1.2.3.4" has no port/],
      [`${I}${P}Endpoint = 1.2.3.4:65536\n`, 4, /^Endpoint: port "65536" is not 0..65535$/],
      [`${I}${P}Endpoint = 1.2.3.400:5\n`, 4, /^Endpoint: "1.2.3.400" is not an IPv4 address$/],
      [`${I}${P}Endpoint = fd00::1:51820\n`, 4, /^Endpoint: "fd00::1:51820": an IPv6 address needs brackets/],
      [`${I}${P}Endpoint = [fd00::1:51820\n`, 4, /^Endpoint: "\[fd00::1:51820" has unbalanced brackets/],
      [`${I}${P}Endpoint = [fd00:::1]:51820\n`, 4, /^Endpoint: "\[fd00:::1\]" is not an IPv6 address$/],
      [`${I}${P}Endpoint =\n`, 4, /^Endpoint: no value/],
    ];
    for (const [text, line, reason] of cases) {
      const result = parseWgQuick(text);
      expect(result.ok, text).toBe(false);
      if (result.ok) continue;
      expect({ line: result.line, reason: result.reason }, text).toEqual({ line, reason: expect.stringMatching(reason) });
    }
  });

  it("the first error in the file is the one reported", () => {
    expect(parseWgQuick(`[Interface]\nListenPort = x\n[Peer]\nPublicKey = bad\n`)).toMatchObject({ ok: false, line: 2 });
    expect(parseWgQuick(`[Interface]\n[Peer]\n[Peer]\nPublicKey = bad\n`)).toMatchObject({ ok: false, line: 2 });
  });

  it("property: random configurations survive formatWgQuick and a writer of our own, across many seeds", () => {
    for (let i = 0; i < 400; i++) {
      const r = rng(`wg-quick/round-trip#${i}`);
      const config = randomConfig(r);
      const viaFormat = parseWgQuick(formatWgQuick(config));
      expect(viaFormat, r.where(`formatWgQuick:\n${formatWgQuick(config)}`)).toStrictEqual({ ok: true, value: config });
      const text = writeLoosely(r, config);
      expect(parseWgQuick(text), r.where(`loose writer:\n${text}`)).toStrictEqual({ ok: true, value: config });
    }
  });

  it("fuzz: mutated files and random text only ever yield a result, and accepted ones round-trip", () => {
    const r = rng("wg-quick/fuzz");
    const seeds = [REALISTIC, ...Array.from({ length: 20 }, (_, i) => formatWgQuick(randomConfig(new Rng(`wg-quick/fuzz-seed#${i}`))))];
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 5000; i++) {
      const text = r.bool(0.85) ? mutate(r, r.pick(seeds)) : randomText(r);
      let result: WgQuickParsed | undefined;
      expect(() => (result = parseWgQuick(text)), r.where(JSON.stringify(text))).not.toThrow();
      if (result!.ok) {
        accepted++;
        const again = parseWgQuick(formatWgQuick(result!.value));
        expect(again, r.where(`reformatting ${JSON.stringify(text)}`)).toStrictEqual({ ok: true, value: { ...result!.value, ignored: [] } });
      } else {
        refused++;
        const { line, reason } = result!;
        expect(Number.isInteger(line) && line >= 1 && line <= text.split("\n").length, r.where(`line ${line} of ${JSON.stringify(text)}`)).toBe(true);
        expect(reason.length, r.where(JSON.stringify(text))).toBeGreaterThan(0);
      }
    }
    expect(accepted, "mutations that keep the file valid").toBeGreaterThan(250);
    expect(refused, "mutations that break it").toBeGreaterThan(1000);
  });
});

// --- Random configurations, and text to feed the parser ---

/** An address in both forms, its text written without the code under test. */
function randomAddress(r: Rng, family: 4 | 6): { bytes: Uint8Array; text: string } {
  if (family === 4) {
    const bytes = r.bytes(4);
    return { bytes, text: bytes.join(".") };
  }
  // Zero words are common, so "::" compression and its tie rule get exercised.
  const words = Array.from({ length: 8 }, () => (r.bool(0.4) ? 0 : r.bool() ? r.int(1, 0xff) : r.int(0, 0xffff)));
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  const text = new URL(`http://[${words.map((w) => w.toString(16)).join(":")}]/`).hostname.slice(1, -1);
  return { bytes, text };
}

function masked(bytes: Uint8Array, length: number): Uint8Array {
  const out = bytes.slice();
  for (let bit = length; bit < out.length * 8; bit++) out[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return out;
}

function randomConfig(r: Rng): WgQuickConfig {
  const update: DeviceUpdate = { replacePeers: true, peers: [] };
  if (r.bool(0.8)) update.privateKey = r.bool(0.1) ? null : r.bytes(32);
  if (r.bool(0.5)) update.listenPort = r.bool(0.2) ? r.pick([0, 65535]) : r.int(0, 65535);
  if (r.bool(0.3)) update.fwmark = r.bool(0.2) ? r.pick([0, 0xffffffff]) : r.u32();
  const addresses: Prefix[] = [];
  for (let n = r.int(0, 4); n > 0; n--) {
    const family = r.bool() ? 4 : 6;
    addresses.push({ family, address: randomAddress(r, family).bytes, length: r.int(0, family === 4 ? 32 : 128) });
  }
  const config: WgQuickConfig = { update, addresses, ignored: [] };
  if (r.bool(0.5)) config.mtu = r.int(addresses.some((a) => a.family === 6) ? 1280 : 576, 65535);
  for (let n = r.int(0, 5); n > 0; n--) {
    const p = peer(r.bytes(32));
    if (r.bool(0.4)) p.presharedKey = r.bool(0.1) ? new Uint8Array(32) : r.bytes(32);
    for (let k = r.int(0, 5); k > 0; k--) {
      const family = r.bool() ? 4 : 6;
      const length = r.int(0, family === 4 ? 32 : 128);
      p.allowedIps.push({ family, address: masked(randomAddress(r, family).bytes, length), length });
    }
    if (r.bool(0.6)) p.endpoint = { address: randomAddress(r, r.bool() ? 4 : 6).text, port: r.int(0, 65535) };
    if (r.bool(0.4)) p.persistentKeepaliveInterval = r.int(0, 65535);
    update.peers.push(p);
  }
  return config;
}

/** The configuration as a person might write it: any case, spacing, comments, lists split or joined. */
function writeLoosely(r: Rng, config: WgQuickConfig): string {
  const lines: string[] = [];
  const pad = (): string => r.pick(["", " ", "  ", "\t"]);
  const anyCase = (key: string): string => r.pick([key, key.toLowerCase(), key.toUpperCase()]);
  const comment = (): string => (r.bool(0.2) ? `${pad()}# ${r.pick(["note", "#", "= x", "[Peer]"])}` : "");
  const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");
  const set = (key: string, value: string): void => {
    if (r.bool(0.1)) lines.push(r.pick(["", "# a comment", "   ", "\t# [Interface]"]));
    lines.push(`${pad()}${anyCase(key)}${pad()}=${pad()}${value}${pad()}${comment()}${r.bool(0.1) ? "\r" : ""}`);
  };
  /** A list as one or several lines, bare host addresses where the prefix allows. */
  const list = (key: string, items: Prefix[], bareHosts: boolean): void => {
    const texts = items.map((p) => {
      const text = p.family === 4 ? p.address.join(".") : new URL(`http://[${Buffer.from(p.address).toString("hex").replace(/(....)(?!$)/g, "$1:")}]/`).hostname.slice(1, -1);
      return bareHosts && p.length === (p.family === 4 ? 32 : 128) && r.bool() ? text : `${text}/${p.length}`;
    });
    for (let at = 0; at < texts.length; ) {
      const take = r.int(1, texts.length - at);
      set(key, texts.slice(at, at + take).join(`${pad()},${pad()}`));
      at += take;
    }
  };
  const { update } = config;
  const peerSections = update.peers.map((p) => {
    const section: () => void = () => {
      lines.push(`${pad()}${anyCase("[Peer]")}${comment()}`);
      const fields: (() => void)[] = [];
      if (p.presharedKey !== undefined) fields.push(() => set("PresharedKey", b64(p.presharedKey!)));
      if (p.allowedIps.length > 0) fields.push(() => list("AllowedIPs", p.allowedIps, true));
      if (p.endpoint !== undefined) {
        const { address, port } = p.endpoint;
        fields.push(() => set("Endpoint", address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`));
      }
      if (p.persistentKeepaliveInterval !== undefined) {
        const seconds = p.persistentKeepaliveInterval;
        fields.push(() => set("PersistentKeepalive", seconds === 0 && r.bool() ? "off" : String(seconds)));
      }
      // PublicKey anywhere in its section; AllowedIPs stay one block so their order is kept.
      fields.splice(r.int(0, fields.length), 0, () => set("PublicKey", b64(p.publicKey)));
      for (const field of fields) field();
    };
    return section;
  });
  const interfaceSection = (): void => {
    lines.push(`${anyCase("[Interface]")}${comment()}`);
    const fields: (() => void)[] = [];
    if (update.privateKey !== undefined) fields.push(() => set("PrivateKey", b64(update.privateKey ?? new Uint8Array(32))));
    if (update.listenPort !== undefined) fields.push(() => set("ListenPort", String(update.listenPort)));
    if (update.fwmark !== undefined) {
      const mark = update.fwmark;
      fields.push(() => set("FwMark", mark === 0 && r.bool() ? "off" : r.bool() ? `0x${mark.toString(16)}` : String(mark)));
    }
    if (config.addresses.length > 0) fields.push(() => list("Address", config.addresses, false));
    if (config.mtu !== undefined) fields.push(() => set("MTU", String(config.mtu)));
    for (const field of r.shuffle(fields)) field();
  };
  // [Interface] goes anywhere among the peers, whose order must be kept.
  const sections = [...peerSections];
  sections.splice(r.int(0, sections.length), 0, interfaceSection);
  for (const section of sections) {
    section();
    if (r.bool()) lines.push("");
  }
  return lines.join("\n") + (r.bool() ? "\n" : "");
}

/** A few random edits, biased towards the characters the grammar turns on. */
function mutate(r: Rng, text: string): string {
  let out = text;
  for (let n = r.int(1, 4); n > 0; n--) {
    const lines = out.split("\n");
    const at = r.int(0, Math.max(0, out.length - 1));
    const char = r.pick(["[", "]", "=", "#", ",", "/", ":", ".", "\n", " ", "x", "0", "9", "+", "A", "%", "\u00e9", String.fromCharCode(r.int(0, 0xffff))]);
    switch (r.int(0, 6)) {
      case 0:
        out = out.slice(0, at) + char + out.slice(at + 1);
        break;
      case 1:
        out = out.slice(0, at) + char + out.slice(at);
        break;
      case 2:
        out = out.slice(0, at) + out.slice(at + r.int(1, 8));
        break;
      case 3: {
        const line = r.int(0, lines.length - 1);
        lines.splice(r.int(0, lines.length), 0, lines[line]!);
        out = lines.join("\n");
        break;
      }
      case 4:
        lines.splice(r.int(0, lines.length - 1), 1);
        out = lines.join("\n");
        break;
      case 5:
        out = out.slice(0, at);
        break;
      default: {
        const line = r.int(0, lines.length - 1);
        lines[line] = lines[line]!.toLowerCase();
        out = lines.join("\n");
      }
    }
  }
  return out;
}

function randomText(r: Rng): string {
  const pieces = ["[Interface]", "[Peer]", "\n", "=", " ", "#", ",", "PrivateKey", "PublicKey", "AllowedIPs", "Address", "Endpoint", "MTU", "ListenPort", "0", "65535", "10.0.0.1/8", "[::1]:1", "off", ZERO_KEY, PUB1];
  let out = "";
  for (let n = r.int(0, 60); n > 0; n--) out += r.bool(0.7) ? r.pick(pieces) : String.fromCharCode(r.int(0, 0x2ff));
  return out;
}
