// `wardline gateway` and `wardline client` from the command line: options from flags, environment
// and defaults, each bad one a usage error naming the flag or variable; help; and a start that
// cannot open its TUN device failing with status 1 and the reason (the kernel refuses a name with
// two %d templates). Running daemons are tested end to end in test/e2e/access.test.ts.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CLIENT_HELP, deviceCommand, deviceConfig, GATEWAY_HELP } from "./device.js";

const dir = mkdtempSync(join(tmpdir(), "wardline-device-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = { "portal-url": "https://portal.example", token: "wlg_x.y" };

function run(role: "gateway" | "client", argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number; out: string; err: string }> {
  let out = "";
  let err = "";
  return deviceCommand(role, argv, { stdout: (t) => (out += t), stderr: (t) => (err += t) }, env).then((status) => ({ status, out, err }));
}

describe("device daemon options", () => {
  it("takes defaults, and every flag from its environment variable", () => {
    const c = deviceConfig("gateway", base, {});
    expect(c).toMatchObject({
      portalUrl: "https://portal.example", token: { value: "wlg_x.y" }, stateDir: "/var/lib/wardline/gateway", device: "wl-gateway", mtu: 1280, port: 0,
      http: { host: "127.0.0.1", port: 9479 }, logFormat: "json", logLevel: "info",
    });
    expect(deviceConfig("client", base, {}, true)).toMatchObject({ device: "wl-client", http: { host: "127.0.0.1", port: 9480 }, logFormat: "human" });
    const env = {
      WARDLINE_PORTAL_URL: "http://10.0.0.1:8080/", WARDLINE_TOKEN_FILE: "/etc/wardline/token", WARDLINE_STATE_DIR: "/srv/wl", WARDLINE_NAME: "edge 1",
      WARDLINE_DEVICE: "wg7", WARDLINE_MTU: "1400", WARDLINE_PORT: "51820", WARDLINE_HTTP: "off", WARDLINE_LOG_FORMAT: "human", WARDLINE_LOG_LEVEL: "debug",
      WARDLINE_RESOLVERS: "192.0.2.53, [2001:db8::53]:5353",
    };
    expect(deviceConfig("gateway", {}, env)).toEqual({
      portalUrl: "http://10.0.0.1:8080", token: { file: "/etc/wardline/token" }, stateDir: "/srv/wl", name: "edge 1", device: "wg7", mtu: 1400, port: 51820,
      http: undefined, logFormat: "human", logLevel: "debug", resolvers: ["192.0.2.53", "[2001:db8::53]:5353"],
    });
    // A flag wins over its variable.
    expect(deviceConfig("client", { ...base, mtu: "1300" }, { WARDLINE_MTU: "9000" }).mtu).toBe(1300);
  });

  it.each([
    [{}, {}, /portal's URL is required/],
    [{ "portal-url": "ftp://x" }, {}, /--portal-url must be an http\(s\) URL/],
    [{ "portal-url": "https://p" }, {}, /a gateway token is required/],
    [{ ...base, "token-file": "/t" }, {}, /give the token once: --token and --token-file/],
    [{ "portal-url": "https://p" }, { WARDLINE_TOKEN: "  " }, /WARDLINE_TOKEN is empty/],
    [{ ...base, mtu: "1000" }, {}, /--mtu must be 1280-9000/],
    [base, { WARDLINE_MTU: "x" }, /WARDLINE_MTU must be 1280-9000/],
    [{ ...base, port: "70000" }, {}, /--port must be a port/],
    [{ ...base, http: "localhost:1" }, {}, /--http must be addr:port/],
    [{ ...base, device: "a-name-that-is-too-long" }, {}, /--device must be an interface name/],
    [{ ...base, name: "a\nb" }, {}, /--name must be 1-255 characters/],
    [{ ...base, "log-format": "xml" }, {}, /--log-format must be json or human/],
    [base, { WARDLINE_LOG_LEVEL: "loud" }, /WARDLINE_LOG_LEVEL must be debug, info, warn or error/],
    [{ ...base, resolver: "dns.example" }, {}, /--resolver must be IP addresses/],
  ])("refuses %j %j", (values, env, message) => {
    expect(() => deviceConfig("gateway", values, env)).toThrow(message);
  });

  it("prints help, and usage errors exit 2 with the help", async () => {
    expect(await run("gateway", ["--help"])).toMatchObject({ status: 0, out: GATEWAY_HELP });
    expect(await run("client", ["-h"])).toMatchObject({ status: 0, out: CLIENT_HELP });
    const unknown = await run("client", ["--bogus"]);
    expect(unknown.status).toBe(2);
    expect(unknown.err).toMatch(/^wardline client: unknown option '--bogus'/);
    expect(unknown.err).toContain(CLIENT_HELP);
    expect((await run("gateway", ["extra"], {})).err).toMatch(/unexpected argument 'extra'/);
    // The client takes no --resolver.
    expect((await run("client", ["--resolver", "1.1.1.1"])).status).toBe(2);
  });

  it("refuses a token file others may read, naming the chmod that fixes it", async () => {
    const file = join(dir, "token");
    writeFileSync(file, "wlg_a.b", { mode: 0o644 });
    const r = await run("gateway", ["--portal-url", "http://127.0.0.1:9", "--token-file", file]);
    expect(r.status).toBe(2);
    expect(r.err).toMatch(/may be read by others.*chmod 600/);
  });

  it("exits 1 with the reason when the TUN device cannot be opened", async () => {
    const r = await run("client", ["--portal-url", "http://127.0.0.1:9", "--token", "wlc_a.b", "--state-dir", join(dir, "state"), "--device", "wl%d%d", "--http", "off"]);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/cannot start.*cannot open the TUN device 'wl%d%d'/);
  });
});
