// `wardline up`: the portal on the embedded database, a relay and a gateway in one process, for a
// first try on one host. Logs on stderr (each line names its part: portal, relay, gateway, up); what
// to do next on stdout.
//
// 1. Options: every one checked before anything is opened; the relay's through relayConfig and the
//    gateway's through deviceConfig, so they mean what they mean for `wardline relay` and
//    `wardline gateway`.
// 2. The portal starts on the embedded database (PGlite) under --data-dir.
// 3. Provision, through the API's own controllers acting as the admin (the same validation as over
//    HTTP, without a round trip): on the first start the account with its admin (a generated
//    password and a one-time sign-in link, as `wardline portal --init-admin` makes them), a site
//    "default" with a gateway token, a relay token, a service account "first-client" in a group
//    "First clients" with a client token, and an API client "wardline up" with an API token for the
//    commands printed in 6. Ids go to <data-dir>/up.json, each token to <data-dir>/tokens/<name>.token
//    (mode 0600, in a 0700 directory), so a later start on the same data dir reuses them all: the
//    client line it prints stays valid. A stored token the portal no longer accepts (revoked, expired,
//    its actor disabled or deleted) and a deleted site, group or actor are replaced, and said so.
// 4. The relay starts in process (startRelay), joined to the portal with the relay token, announcing
//    --public-ip4 (default this host's first non-loopback IPv4 address).
// 5. The gateway starts in process (GatewayDaemon) with the gateway token; it needs root for its TUN
//    device, forwarding and nftables. Not root, or --no-gateway: the portal and relay run alone, as
//    the log says.
// 6. stdout: the portal's URL, the admin's sign-in (the password on the first start only), the API
//    calls that describe a resource and let "First clients" reach it, and the exact
//    `wardline client` line for another machine.
// 7. Run until SIGINT, SIGTERM or io.signal (exit 0), or until a part cannot go on: the gateway's or
//    the relay's token refused, the gateway's host changes failing (exit 1). Stop in reverse order:
//    the gateway (which restores the host's forwarding and removes its nftables table), the relay,
//    then the portal, which closes the database.

import { Reflector } from "@nestjs/core";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { readTokenFile } from "../daemons/io/device-state.js";
import { GatewayDaemon } from "../daemons/io/gateway-daemon.js";
import { createLog, type Log, type LogFormat, type LogLevel } from "../daemons/io/log.js";
import { ActorsController } from "../server/src/actors/actors.controller.js";
import { ActorsService } from "../server/src/actors/actors.service.js";
import { AuthGuard } from "../server/src/auth/auth.guard.js";
import { initAdmin, initAdminProblem, type InitializedAdmin } from "../server/src/auth/init-admin.js";
import type { Principal } from "../server/src/auth/principal.js";
import { DEFAULT_RATE_LIMIT, RateLimiter } from "../server/src/auth/rate-limit.js";
import { AccountScope } from "../server/src/database/account-scope.js";
import { AccountEntity, ActorEntity, GroupEntity, SiteEntity, type Account, type Actor } from "../server/src/database/entities.js";
import { GroupsController } from "../server/src/groups/groups.controller.js";
import { isUuid } from "../server/src/http/input.js";
import { Problem } from "../server/src/http/problem.js";
import { startPortal, type Portal } from "../server/src/portal.js";
import { SitesController } from "../server/src/sites/sites.controller.js";
import { RelayTokensController, TokensController } from "../server/src/tokens/tokens.controller.js";
import { TokensService } from "../server/src/tokens/tokens.service.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, packageVersion, parseCommandLine, parseListenAddress, parsePort } from "./args.js";
import { deviceConfig, type DeviceConfig } from "./device.js";
import { readRelayToken, relayConfig, startRelay, type RelayConfig, type RunningRelay } from "./relay.js";

export interface UpIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Whether stderr is a terminal (human logs by default then). */
  stderrIsTty?: boolean;
  /** Stops everything as SIGTERM does: for callers that run it in process. */
  signal?: AbortSignal;
}

export const UP_HELP = `Usage: wardline up [options]

Runs the portal (on the embedded database), a relay and a gateway together in one process, for a
first try on one host. The first start makes the account, an admin (its generated password and a
one-time sign-in link are printed), a site "default", the gateway's and the relay's tokens, a
service account "first-client" in a group "First clients" with a client token, and an API token
for the commands it prints. It keeps their ids in <data-dir>/up.json and the tokens in
<data-dir>/tokens/ (mode 0600), so starting again on the same data dir reuses them; a token
revoked in the meantime is replaced by a new one. It then prints what to do next: the API calls
that describe a resource and let "First clients" reach it, and the \`wardline client\` line to run
on another machine.

The gateway needs root (its TUN device, IP forwarding and an nftables table, wardline_gateway,
all undone when it stops). Without root, or with --no-gateway, the portal and the relay run alone.

Options:
  --data-dir <dir>           where the database, up.json, the tokens and the gateway's key live
                             (default ./.wardline)
  --port <n>                 the portal's HTTP port (default 8080)
  --host <addr>              the portal's address (default 127.0.0.1; 0.0.0.0 to let other machines
                             in, which clients on them need)
  --public-url <url>         where browsers and clients reach the portal (env WARDLINE_PUBLIC_URL;
                             default http://<host>:<port>, with --public-ip4 for host 0.0.0.0)
  --admin <email>            the first admin's email (default admin@localhost); read on the first
                             start only
  --relay-port <n>           the relay's UDP port (WARDLINE_RELAY_PORT; default 3478)
  --public-ip4 <addr>        the IPv4 address the relay announces (WARDLINE_RELAY_PUBLIC_IP4;
                             default this host's first non-loopback one)
  --public-ip6 <addr>        likewise for IPv6 (WARDLINE_RELAY_PUBLIC_IP6)
  --allow-private-peers      let the relay relay to private addresses, as on a LAN
                             (WARDLINE_RELAY_ALLOW_PRIVATE_PEERS=1, true or yes)
  --relay-http <addr:port|off>
                             the relay's /healthz, /readyz and /metrics (WARDLINE_RELAY_HTTP;
                             default 127.0.0.1:9478)
  --no-gateway               run the portal and the relay only
  --gateway-http <addr:port|off>
                             the gateway's /healthz, /readyz and /metrics (default 127.0.0.1:9479)
  --resolver <addr,...>      DNS servers for DNS resources' names (WARDLINE_RESOLVERS; default the
                             host's /etc/resolv.conf)
  --log-format json|human    log lines on stderr (WARDLINE_LOG_FORMAT; default human on a terminal,
                             json otherwise)
  --log-level <level>        debug, info, warn or error (WARDLINE_LOG_LEVEL; default info)
  -h, --help                 show this help

The other WARDLINE_RELAY_* variables of \`wardline relay\` (listening addresses, port range, realm,
allocations) apply to the relay too. The database is always the embedded one: for PostgreSQL, run
\`wardline portal\`, \`wardline relay\` and \`wardline gateway\` apart.

Stop it with SIGINT or SIGTERM (exit 0). Exit status 1 when a part cannot start or go on.
`;

/** The account `wardline up` provisions. */
const UP_ACCOUNT = "default";
/** What up names what it makes: the site, the client's group and service account, the API client. */
export const UP_NAMES = { site: "default", group: "First clients", client: "first-client", apiClient: "wardline up", token: "wardline up" } as const;
/** The state file under the data dir; the tokens are files in UP_TOKENS_DIR beside it. */
const UP_STATE_FILE = "up.json";
const UP_TOKENS_DIR = "tokens";

/** The ids up.json keeps between starts. */
export interface UpState {
  adminId?: string;
  siteId?: string;
  groupId?: string;
  clientActorId?: string;
  apiClientId?: string;
}

/** The tokens up keeps, by the name of their file (<name>.token). */
type UpTokenName = "gateway" | "relay" | "client" | "api";

/** What provisioning made or found. */
interface Provisioned {
  account: Account;
  admin: Actor;
  /** Set on the first start (and whenever the stored admin was gone): the new password and link. */
  initialized: InitializedAdmin | undefined;
  state: Required<UpState>;
  tokens: Record<UpTokenName, string>;
  /** Human-readable notes on what was replaced, for the log. */
  replaced: string[];
}

/** The options after flags, environment and defaults. */
export interface UpConfig {
  dataDir: string;
  host: string;
  port: number;
  publicUrl: string | undefined;
  adminEmail: string;
  relay: RelayConfig;
  /** Undefined with --no-gateway; its portal URL and token are placeholders until the portal runs. */
  gateway: DeviceConfig | undefined;
  log: { format: LogFormat; level: LogLevel };
}

/** A syntactically valid relay token, so that relayConfig checks a registered relay's options before the real token exists. */
const PLACEHOLDER_RELAY_TOKEN = `wlr_00000000-0000-4000-8000-000000000000.${"A".repeat(43)}`;
/** Relay variables that would contradict the in-process relay's registration with this portal. */
const RELAY_OWN_VARIABLES = ["WARDLINE_RELAY_SECRET", "WARDLINE_RELAY_PORTAL_URL", "WARDLINE_RELAY_TOKEN", "WARDLINE_RELAY_TOKEN_FILE"];

const isWildcard = (host: string): boolean => host === "0.0.0.0" || host === "::";
const urlHost = (host: string): string => (host.includes(":") ? `[${host}]` : host);

/** Resolves flags and environment into an UpConfig; throws an Error naming the bad option. */
export function upConfig(values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv, stderrIsTty: boolean): UpConfig {
  const text = (name: string): string | undefined => (typeof values[name] === "string" ? (values[name] as string) : undefined);
  const port = parsePort(text("port") ?? "8080", "--port");
  const host = text("host") ?? "127.0.0.1";
  if (!/^[\w.:-]+$/.test(host)) throw new Error(`--host must be an address, got '${host}'`);
  const adminEmail = text("admin") ?? "admin@localhost";
  const adminProblem = initAdminProblem({ email: adminEmail, slug: UP_ACCOUNT });
  if (adminProblem !== undefined) throw new Error(`--admin: ${adminProblem}`);

  // The relay: up's own names for the flags that `wardline relay` calls --port and --http are
  // checked here, so relayConfig's messages (which name its own flags) never concern them.
  const relayEnv = Object.fromEntries(Object.entries(env).filter(([key]) => !RELAY_OWN_VARIABLES.includes(key)));
  const relayPort = text("relay-port");
  if (relayPort !== undefined) parsePort(relayPort, "--relay-port");
  const relayHttp = text("relay-http");
  if (relayHttp !== undefined && relayHttp !== "off") parseListenAddress(relayHttp, "--relay-http");
  const relay = relayConfig(
    {
      "portal-url": "http://127.0.0.1",
      token: PLACEHOLDER_RELAY_TOKEN,
      port: relayPort,
      http: relayHttp,
      "public-ip4": text("public-ip4"),
      "public-ip6": text("public-ip6"),
      "allow-private-peers": values["allow-private-peers"],
    },
    relayEnv,
  );

  const publicUrlText = text("public-url") ?? env.WARDLINE_PUBLIC_URL;
  let publicUrl: string | undefined;
  if (publicUrlText !== undefined) {
    const option = text("public-url") !== undefined ? "--public-url" : "WARDLINE_PUBLIC_URL";
    let url: URL | undefined;
    try {
      url = new URL(publicUrlText);
    } catch {
      url = undefined;
    }
    if (url === undefined || !/^https?:$/.test(url.protocol) || url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
      throw new Error(`${option} must be an http:// or https:// URL without query, fragment or credentials, got '${publicUrlText}'`);
    }
    publicUrl = publicUrlText.replace(/\/+$/, "");
  } else if (isWildcard(host) && port !== 0) {
    // Listening everywhere: other machines reach the portal where they reach the relay.
    const address = relay.publicAddress[4] ?? relay.publicAddress[6];
    if (address !== undefined) publicUrl = `http://${urlHost(address)}:${port}`;
  }

  const gatewayHttp = text("gateway-http") ?? "127.0.0.1:9479";
  const http = gatewayHttp === "off" ? undefined : parseListenAddress(gatewayHttp, "--gateway-http");
  const dataDir = resolve(text("data-dir") ?? "./.wardline");
  // deviceConfig checks the gateway's options and the log's as `wardline gateway` does; the portal's
  // URL and the token are up's own, known once the portal runs.
  const gatewayEnv = Object.fromEntries(["WARDLINE_RESOLVERS", "WARDLINE_LOG_FORMAT", "WARDLINE_LOG_LEVEL"].map((key) => [key, env[key]]));
  const device = deviceConfig("gateway", {
    "portal-url": "http://127.0.0.1",
    token: "-",
    "state-dir": join(dataDir, "gateway"),
    http: "off",
    resolver: text("resolver"),
    "log-format": text("log-format"),
    "log-level": text("log-level"),
  }, gatewayEnv, stderrIsTty);
  return { dataDir, host, port, publicUrl, adminEmail, relay, gateway: values["no-gateway"] === true ? undefined : { ...device, http }, log: { format: device.logFormat, level: device.logLevel } };
}

// --- 3: provisioning, and what the data dir keeps ---

/** A secret (or the state) written whole: a 0600 temp file renamed over the old one. */
async function writePrivate(path: string, text: string): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, text, { mode: 0o600 });
  await chmod(temp, 0o600);
  await rename(temp, path);
}

/** The ids of an earlier start, or none on the first; a damaged file is an error, not a reason to provision twice. */
async function readState(path: string): Promise<UpState> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const keys: (keyof UpState)[] = ["adminId", "siteId", "groupId", "clientActorId", "apiClientId"];
  const record = parsed as Record<string, unknown> | undefined;
  if (typeof record !== "object" || record === null || Array.isArray(record) || keys.some((k) => record[k] !== undefined && !isUuid(record[k]))) {
    throw new Error(`${path} is not what wardline up wrote: fix it, or remove it to provision anew`);
  }
  return Object.fromEntries(keys.filter((k) => record[k] !== undefined).map((k) => [k, record[k] as string]));
}

/** A stored token, or undefined when there is none yet; a file others may read is refused (readTokenFile). */
async function readStoredToken(path: string): Promise<string | undefined> {
  try {
    return await readTokenFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Step 3 (file header): what up runs with, made on the first start and found on later ones. */
async function provision(portal: Portal, dataDir: string, adminEmail: string, publicUrl: string): Promise<Provisioned> {
  const db = portal.database;
  const statePath = join(dataDir, UP_STATE_FILE);
  const tokenDir = join(dataDir, UP_TOKENS_DIR);
  const state = await readState(statePath);
  const replaced: string[] = [];

  let account = await db.getRepository(AccountEntity).findOne({ where: { slug: UP_ACCOUNT } });
  let admin = account !== null && state.adminId !== undefined ? await new AccountScope(db, account.id, null).repository(ActorEntity).get(state.adminId) : null;
  let initialized: InitializedAdmin | undefined;
  if (account === null || admin === null || admin.type !== "admin" || admin.disabledAt !== null) {
    if (state.adminId !== undefined) replaced.push("the admin (deleted, disabled or no longer an admin): a new password is printed");
    initialized = await initAdmin(db, { email: adminEmail, slug: UP_ACCOUNT, publicUrl });
    account = initialized.account;
    admin = initialized.admin;
  }
  // Everything below is done as the admin would do it over the API.
  const scope = new AccountScope(db, account.id, admin.id);
  const sites = new SitesController();
  const groups = new GroupsController();
  const actors = new ActorsController(new ActorsService());
  const tokensService = new TokensService();
  const actorTokens = new TokensController(tokensService);
  const relayTokens = new RelayTokensController(tokensService);

  // Saved after every step, so that a start that fails halfway does not make a second site (or
  // group, or actor) on the next one.
  const saved: UpState = { ...state, adminId: admin.id };
  const save = (): Promise<void> => writePrivate(statePath, `${JSON.stringify(saved, null, 2)}\n`);
  await save();
  /** The stored id while what it names still exists, else a new one from `make`, saved at once. */
  const keep = async (key: Exclude<keyof UpState, "adminId">, what: string, exists: (id: string) => Promise<boolean>, make: () => Promise<string>): Promise<{ id: string; made: boolean }> => {
    const id = state[key];
    if (id !== undefined && (await exists(id))) return { id, made: false };
    if (id !== undefined) replaced.push(`the ${what} (deleted)`);
    saved[key] = await make();
    await save();
    return { id: saved[key], made: true };
  };
  const isActor = (type: Actor["type"]) => async (id: string): Promise<boolean> => (await scope.repository(ActorEntity).get(id))?.type === type;
  const site = await keep("siteId", `site "${UP_NAMES.site}"`, async (id) => (await scope.repository(SiteEntity).get(id)) !== null, async () => (await sites.create(scope, { name: UP_NAMES.site })).id);
  const group = await keep("groupId", `group "${UP_NAMES.group}"`, async (id) => (await scope.repository(GroupEntity).get(id)) !== null, async () => (await groups.create(scope, { name: UP_NAMES.group })).id);
  const client = await keep("clientActorId", `service account "${UP_NAMES.client}"`, isActor("service_account"), async () => (await actors.create(scope, { type: "service_account", name: UP_NAMES.client })).id);
  // Only what up just made: an admin who took first-client out of the group meant it.
  if (group.made || client.made) await groups.addMember(scope, group.id, client.id);
  const apiClient = await keep("apiClientId", `API client "${UP_NAMES.apiClient}"`, isActor("api_client"), async () => (await actors.create(scope, { type: "api_client", name: UP_NAMES.apiClient })).id);

  await mkdir(tokenDir, { recursive: true, mode: 0o700 });
  await chmod(tokenDir, 0o700);
  // The portal's own check of a presented token, so "still good" means what it means to a device.
  const guard = new AuthGuard(new Reflector(), db, new RateLimiter(DEFAULT_RATE_LIMIT));
  const token = async (name: UpTokenName, fits: (p: Principal) => boolean, issue: () => Promise<{ token: string }>): Promise<string> => {
    const path = join(tokenDir, `${name}.token`);
    const stored = await readStoredToken(path);
    if (stored !== undefined) {
      const principal = await guard.authenticate(stored).catch(() => undefined);
      if (principal !== undefined && principal.accountId === account.id && fits(principal)) return stored;
      replaced.push(`the ${name} token (revoked, expired, or its owner gone)`);
    }
    const issued = (await issue()).token;
    await writePrivate(path, `${issued}\n`);
    return issued;
  };
  const named = { name: UP_NAMES.token };
  const tokens: Record<UpTokenName, string> = {
    gateway: await token("gateway", (p) => p.tokenKind === "gateway" && p.siteId === site.id, () => sites.createToken(scope, site.id, named)),
    relay: await token("relay", (p) => p.tokenKind === "relay", () => relayTokens.create(scope, named)),
    client: await token("client", (p) => p.tokenKind === "client" && p.actorId === client.id, () => actorTokens.create(scope, { actor_id: client.id, ...named })),
    api: await token("api", (p) => p.tokenKind === "api" && p.actorId === apiClient.id, () => actorTokens.create(scope, { actor_id: apiClient.id, ...named })),
  };
  const kept: Required<UpState> = { adminId: admin.id, siteId: site.id, groupId: group.id, clientActorId: client.id, apiClientId: apiClient.id };
  return { account, admin, initialized, state: kept, tokens, replaced };
}

/** An error from provisioning as one line: a Problem's detail with its field messages. */
function describe(error: unknown): string {
  if (error instanceof Problem) return [error.message, ...(error.errors ?? []).map((e) => e.message)].join("; ");
  return (error as Error).message;
}

// --- 6: what to do next ---

const shellQuote = (text: string): string => (/^[\w./:@=+-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`);

/** The text step 6 prints. */
function nextSteps(options: {
  dataDir: string;
  listensEverywhere: boolean;
  localUrl: string;
  publicUrl: string;
  provisioned: Provisioned;
  relay: string;
  gateway: string;
}): string {
  const { provisioned: p, localUrl, publicUrl } = options;
  const tokenFile = (name: UpTokenName): string => shellQuote(join(options.dataDir, UP_TOKENS_DIR, `${name}.token`));
  const call = (path: string, body: unknown): string[] => [
    `       curl -sS -H "authorization: Bearer $(cat ${tokenFile("api")})" -H 'content-type: application/json' \\`,
    `         -d '${JSON.stringify(body)}' ${localUrl}${path}`,
  ];
  const admin = p.initialized !== undefined
    ? [
        `  admin     ${p.admin.email}`,
        `  password  ${p.initialized.password}  (shown this once: change it with PUT /api/me/password)`,
        `  sign in   ${p.initialized.link}`,
        `            (works once, within 15 minutes; or POST /api/auth/${UP_ACCOUNT}/password)`,
      ]
    : [
        `  admin     ${p.admin.email}, with the password printed on the first start; to set a new one,`,
        `            stop this and run: wardline portal --init-admin ${shellQuote(p.admin.email ?? "")} --data-dir ${shellQuote(options.dataDir)}`,
      ];
  return [
    "Wardline is up.",
    "",
    `  portal    ${publicUrl}  (API explorer: ${publicUrl}/api/docs)`,
    ...admin,
    `  relay     ${options.relay}`,
    `  gateway   ${options.gateway}`,
    ...(p.replaced.length > 0 ? [`  replaced  ${p.replaced.join("; ")}`] : []),
    "",
    "Next steps:",
    `  1. Describe a resource this host's gateway reaches (type cidr, ip or dns; put in your own address):`,
    ...call("/api/resources", { type: "cidr", name: "my network", address: "192.168.1.0/24", site_ids: [p.state.siteId] }),
    `  2. Let the group "${UP_NAMES.group}" reach it (resource_id: the "id" the first call answered):`,
    ...call("/api/policies", { group_id: p.state.groupId, resource_id: "<resource id>" }),
    `  3. On another machine, as root, run the client as the service account "${UP_NAMES.client}":`,
    `       wardline client --portal-url ${publicUrl} --token ${p.tokens.client}`,
    ...(options.listensEverywhere
      ? []
      : ["     The portal listens on this host only: for other machines, start wardline up with --host 0.0.0.0", "     (and --public-url http://<this host's address>:<port> if the address it guesses is not the one they reach)."]),
    "",
    "Stop it with Ctrl-C (SIGINT) or SIGTERM; starting it again on the same --data-dir reuses all of the above.",
    "",
  ].join("\n");
}

// --- 1, 2, 4, 5, 7: the command ---

/** Runs `wardline up` with argv (after the command name); resolves to the exit status. */
export async function upCommand(argv: readonly string[], io: UpIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const parsed = parseCommandLine(argv, {
    "data-dir": { type: "string" },
    port: { type: "string" },
    host: { type: "string" },
    "public-url": { type: "string" },
    admin: { type: "string" },
    "relay-port": { type: "string" },
    "public-ip4": { type: "string" },
    "public-ip6": { type: "string" },
    "allow-private-peers": { type: "boolean" },
    "relay-http": { type: "string" },
    "no-gateway": { type: "boolean", default: false },
    "gateway-http": { type: "string" },
    resolver: { type: "string" },
    "log-format": { type: "string" },
    "log-level": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  });
  if ("error" in parsed) {
    io.stderr(`wardline up: ${parsed.error}\n\n${UP_HELP}`);
    return EXIT_USAGE;
  }
  if (parsed.values.help) {
    io.stdout(UP_HELP);
    return EXIT_OK;
  }
  if (parsed.positionals.length > 0) {
    io.stderr(`wardline up: unexpected argument '${parsed.positionals[0]}'\n\n${UP_HELP}`);
    return EXIT_USAGE;
  }
  let config: UpConfig;
  try {
    config = upConfig(parsed.values, env, io.stderrIsTty === true);
  } catch (error) {
    io.stderr(`wardline up: ${(error as Error).message}\n`);
    return EXIT_USAGE;
  }
  const log = createLog({ format: config.log.format, level: config.log.level, write: io.stderr });
  const part = (component: string): Log => (level, msg, fields = {}) => log(level, msg, { component, ...fields });
  const upLog = part("up");

  // 7, listened for from the start: the database takes seconds to open, and a stop asked for
  // meanwhile must still close it.
  let outcome: { status: number; why: string } | undefined;
  let settle: (o: { status: number; why: string }) => void = () => undefined;
  const ended = new Promise<{ status: number; why: string }>((resolveEnded) => {
    settle = (o) => {
      if (outcome !== undefined) return;
      outcome = o;
      resolveEnded(o);
    };
  });
  // A function, so that the compiler does not take `outcome` for unchanged across the awaits.
  const stopAsked = (): { status: number; why: string } | undefined => outcome;
  const onSigint = (): void => settle({ status: EXIT_OK, why: "SIGINT" });
  const onSigterm = (): void => settle({ status: EXIT_OK, why: "SIGTERM" });
  const onAbort = (): void => settle({ status: EXIT_OK, why: "abort" });
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigterm);
  io.signal?.addEventListener("abort", onAbort, { once: true });
  if (io.signal?.aborted === true) onAbort();

  let portal: Portal | undefined;
  let relay: RunningRelay | undefined;
  let gateway: GatewayDaemon | undefined;
  try {
    // 2
    try {
      portal = await startPortal({ host: config.host, port: config.port, database: { dataDir: config.dataDir }, log: part("portal"), ...(config.publicUrl !== undefined ? { publicUrl: config.publicUrl } : {}) });
    } catch (error) {
      throw new Error(`cannot start the portal: ${(error as Error).message}`);
    }
    if (stopAsked() !== undefined) return stopAsked()!.status;
    const publicUrl = config.publicUrl ?? portal.url;
    const portalPort = new URL(portal.url).port;
    const localUrl = `http://${urlHost(isWildcard(config.host) ? (config.host === "::" ? "::1" : "127.0.0.1") : config.host)}:${portalPort}`;

    // 3
    let provisioned: Provisioned;
    try {
      provisioned = await provision(portal, config.dataDir, config.adminEmail, publicUrl);
    } catch (error) {
      throw new Error(`cannot provision the portal: ${describe(error)}`);
    }
    for (const what of provisioned.replaced) upLog("info", "replaced what the data dir named", { what });
    if (stopAsked() !== undefined) return stopAsked()!.status;

    // 4
    const relayFile = join(config.dataDir, UP_TOKENS_DIR, "relay.token");
    const relayConfig: RelayConfig = { ...config.relay, portal: { url: localUrl, token: { file: relayFile, option: relayFile } } };
    relay = await startRelay(relayConfig, await readRelayToken(relayConfig.portal!), part("relay"));
    if (relay === undefined) throw new Error("cannot start the relay");
    void relay.refused.then(() => settle({ status: EXIT_FAILURE, why: "the portal refused the relay token" }));
    const joined = relay.announced!;
    const announced = [joined.ipv4, joined.ipv6].filter((a) => a !== undefined).map((a) => `${urlHost(a)}:${joined.port}`);

    // 5
    let gatewayState: string;
    if (config.gateway === undefined) {
      gatewayState = "not running (--no-gateway)";
      upLog("info", "no gateway (--no-gateway): running the portal and the relay only");
    } else if (typeof process.getuid === "function" && process.getuid() !== 0) {
      gatewayState = "not running: it needs root";
      upLog("warn", "not root: the gateway needs root for its TUN device, forwarding and nftables; running the portal and the relay only");
    } else {
      const g = config.gateway;
      try {
        gateway = await GatewayDaemon.start({
          portalUrl: localUrl, token: provisioned.tokens.gateway, stateDir: g.stateDir, name: g.name, tunName: g.device, mtu: g.mtu, port: g.port,
          http: g.http, version: packageVersion(), log: part("gateway"), onFatal: (reason) => settle({ status: EXIT_FAILURE, why: reason }),
          ...(g.resolvers !== undefined ? { resolvers: g.resolvers } : {}),
        });
      } catch (error) {
        throw new Error(`cannot start the gateway: ${(error as Error).message}`);
      }
      gatewayState = `running in site "${UP_NAMES.site}" (device ${g.device}${gateway.statusPort !== undefined ? `, /readyz on ${urlHost(g.http!.host)}:${gateway.statusPort}` : ""})`;
    }
    if (gateway === undefined) {
      const tokenFile = join(config.dataDir, UP_TOKENS_DIR, "gateway.token");
      gatewayState += `\n            the site reaches nothing without one: run as root, or on a host of the site run (as root)\n            wardline gateway --portal-url ${publicUrl} --token-file <a 0600 copy of ${tokenFile}>`;
    }

    // 6
    io.stdout(nextSteps({
      dataDir: config.dataDir,
      listensEverywhere: isWildcard(config.host),
      localUrl,
      publicUrl,
      provisioned,
      relay: announced.join(", "),
      gateway: gatewayState,
    }));
    upLog("info", "up", { portal: publicUrl, relay: announced, gateway: gateway !== undefined });

    // 7
    const end = await ended;
    upLog(end.status === EXIT_OK ? "info" : "error", "shutting down", { reason: end.why });
    return end.status;
  } catch (error) {
    upLog("error", (error as Error).message);
    return EXIT_FAILURE;
  } finally {
    // The signal handlers stay until the end: a second Ctrl-C must not cut the host's restoring short.
    if (gateway !== undefined) {
      await gateway.stop().then(
        () => upLog("info", "gateway stopped; the host's network is as it was"),
        (error: Error) => upLog("error", "the gateway did not stop cleanly", { error: error.message }),
      );
    }
    await relay?.stop().catch((error: Error) => upLog("error", "the relay did not stop cleanly", { error: error.message }));
    await portal?.close().catch((error: Error) => upLog("error", "the portal did not close cleanly", { error: error.message }));
    if (portal !== undefined) upLog("info", "stopped");
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigterm);
    io.signal?.removeEventListener("abort", onAbort);
  }
}
