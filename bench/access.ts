// The product on top of the issue 8 topology (bench/topology.ts): a portal from this checkout in the
// portal namespace, provisioned through its REST API only, and the daemons started as processes in
// their namespaces, for the end-to-end tests and `wardline bench e2e`. start() runs steps 1-6;
// each daemon starts on request (step 7), so a test can kill or stop one and start it again.
//
// 1. Build the topology; give the resource host a second address for the resource no policy grants
//    the client, so a test can tell whether anything reached the resource host through it.
// 2. DNS: the resource host answers every name under internal.test with its address (the gateways
//    resolve through it); the portal host answers example.test, a name outside every resource, and
//    is what the client namespace's /etc/resolv.conf names before the client daemon replaces it.
// 3. `wardline portal --init-admin` prints the admin's password; the portal starts on the embedded
//    database (PGlite) in a temp dir, and answers GET /api/health.
// 4. Sign in with the password (a browser session), create an API client and its API token with it,
//    sign the session out: everything after goes through the API token.
// 5. Provision: a site with a gateway token per gateway; a relay token; a service account (the
//    portal's headless client) with a client token, in a group; a wildcard DNS resource, a CIDR
//    resource, and a resource only another group may reach; the group's policies.
// 6. Each token goes to a 0600 file, which the daemons read with --token-file.
// 7. Relay, gateways and client run `node bin/wardline <role>` in their namespaces and are ready when
//    /readyz answers inside the namespace.
//
// The test process cannot reach the WAN (it is in no namespace), so every API call is curl inside
// the portal namespace; bodies go on its stdin and the credential in a 0600 header file, so neither
// appears in a process listing. destroy() stops the processes by PID, removes the namespaces, then
// the temp dir.
//
// For debugging: LAB_LOG_LEVEL (debug, info…) is the daemons' --log-level, and LAB_NODE_FLAGS are
// node flags for every process started (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ActorView } from "../server/src/actors/actors.service.js";
import type { ProblemDetails } from "../server/src/http/problem.js";
import type { ListBody } from "../server/src/http/input.js";
import type { GroupView } from "../server/src/groups/groups.controller.js";
import type { PolicyView } from "../server/src/policies/policies.controller.js";
import type { FilterView, ResourceView } from "../server/src/resources/resources.controller.js";
import type { SiteView, TokenView } from "../server/src/sites/sites.controller.js";
import { WARDLINE_BIN, type NamespaceProcess } from "./netns.js";
import { AccessTopology, missingTopologyTools, type AccessTopologyOptions, type Host } from "./topology.js";

/** The zone the resource host's DNS serves; the wildcard DNS resource covers every name under it. */
export const INTERNAL_ZONE = "internal.test";
/** A zone no resource covers, which the portal host's DNS answers with the portal's address. */
export const PUBLIC_ZONE = "example.test";
/** The admin `wardline portal --init-admin` creates. */
export const LAB_ADMIN = "admin@example.test";
/** The portal's port on its WAN address. */
export const PORTAL_PORT = 8080;

const ACCOUNT = "default";
/** The resource host's second address, which only the restricted resource covers. */
const RESTRICTED_SUFFIX = 101;
/** Where each daemon serves /readyz, inside its own namespace. */
const READY_PORT = { relay: 9478, gateway: 9479, client: 9480 } as const;
/** Ends curl's output: the status and the headers (as JSON) follow it, after the body. */
const REPLY_MARK = "\n@@wardline-lab@@";
const PORTAL_START_MS = 60_000;
const DAEMON_START_MS = 30_000;

/** One answer of the portal's API. */
export interface ApiReply<T> {
  status: number;
  body: T;
  /** By lower-case name; a header sent more than once has every value. */
  headers: Record<string, string[]>;
}

/** How api() calls: which answer it expects, and with which token. */
export interface ApiCallOptions {
  /** This status is the expected answer (no error is thrown for it); any other throws. */
  expectStatus?: number;
  /** A token to call with instead of the lab's API token. */
  token?: string;
}

/** A non-2xx answer the call did not expect; `problem` is the API's problem details. */
export class ApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly problem: ProblemDetails | string,
  ) {
    super(`${method} ${path}: ${status} ${typeof problem === "string" ? problem : JSON.stringify(problem)}`);
  }
}

/** What a new resource is; the site defaults to the lab's. */
export interface ResourceSpec {
  type: ResourceView["type"];
  name: string;
  address?: string;
  filters?: FilterView[];
  siteIds?: string[];
}

/** The ids of what start() provisioned. */
export interface LabIds {
  siteId: string;
  /** The API client whose token the lab calls the API with. */
  apiClientId: string;
  /** The service account the client daemon runs as. */
  clientActorId: string;
  /** The client's group. */
  groupId: string;
  /** A group the client is not in; it alone may reach the restricted resource. */
  otherGroupId: string;
  resources: { wildcard: string; cidr: string; restricted: string };
  policies: { wildcard: string; cidr: string; restricted: string };
}

/** The 0600 files holding each daemon's token. */
export interface LabTokenFiles {
  relay: string;
  /** One per gateway, in topology.gateways order. */
  gateways: string[];
  client: string;
}

/** Why the lab cannot run here (a missing tool, an unbuilt checkout), or undefined. */
export function missingAccessLabPrerequisites(): string | undefined {
  const tools = missingTopologyTools();
  if (tools !== undefined) return tools;
  if (spawnSync(process.execPath, [WARDLINE_BIN, "portal", "--help"], { stdio: "ignore", timeout: 20_000 }).status !== 0) return "`wardline portal --help` fails: run npm run build:ts";
  return undefined;
}

/** Why `wardline <role>` cannot join a portal yet (its help lists no --portal-url or --token-file), or undefined. */
export function missingDaemonFlags(role: "relay" | "gateway" | "client"): string | undefined {
  const help = spawnSync(process.execPath, [WARDLINE_BIN, role, "--help"], { encoding: "utf8", timeout: 20_000 });
  const missing = ["--portal-url", "--token-file"].filter((flag) => help.status !== 0 || !help.stdout.includes(flag));
  return missing.length === 0 ? undefined : `\`wardline ${role} --help\` lists no ${missing.join(" or ")}`;
}

/** The portal, its provisioning and the daemons of issue 8 in an AccessTopology; start() builds it, destroy() removes it. */
export class AccessLab {
  /** The portal as every namespace reaches it. */
  readonly portalUrl: string;
  /** The resource host's address that only the restricted resource covers. */
  readonly restrictedAddress: string;
  readonly tokenFiles: LabTokenFiles;
  private idsValue: LabIds | undefined;
  private readonly portalData: string;
  private readonly credentialFile: string;
  private portalProcess: NamespaceProcess | undefined;
  private readonly daemons = new Map<string, NamespaceProcess>();
  private oneOffHeaders = 0;
  private apiClientId = "";
  private destroying: Promise<void> | undefined;

  private constructor(
    readonly topology: AccessTopology,
    /** The temp dir holding the portal's data, the token files and the daemons' state. */
    readonly dir: string,
  ) {
    this.portalUrl = `http://${topology.portal.address}:${PORTAL_PORT}`;
    this.restrictedAddress = topology.resource.address.replace(/\d+$/, String(RESTRICTED_SUFFIX));
    this.portalData = join(dir, "portal");
    this.credentialFile = join(dir, "secrets", "api.header");
    const tokens = join(dir, "secrets");
    this.tokenFiles = {
      relay: join(tokens, "relay.token"),
      gateways: topology.gateways.map((g) => join(tokens, `${g.role}.token`)),
      client: join(tokens, "client.token"),
    };
  }

  /** Builds the topology, starts the portal and provisions it (steps 1-6); on failure removes everything and throws. */
  static async start(options: AccessTopologyOptions): Promise<AccessLab> {
    const topology = AccessTopology.create(options);
    let lab: AccessLab | undefined;
    try {
      lab = new AccessLab(topology, mkdtempSync(join(tmpdir(), "wardline-lab-")));
      mkdirSync(join(lab.dir, "secrets"), { mode: 0o700 });
      await lab.startDns();
      const password = await lab.initAdmin();
      await lab.startPortal();
      await lab.signIn(password);
      await lab.provision();
      return lab;
    } catch (error) {
      if (lab !== undefined) await lab.destroy();
      else await topology.destroy();
      throw error;
    }
  }

  /** The ids of what was provisioned. */
  get ids(): LabIds {
    if (this.idsValue === undefined) throw new Error("the lab is not provisioned yet");
    return this.idsValue;
  }

  /** A daemon's process by the name it was started under ("relay", "client", or a gateway's role, "gateway0"…). */
  daemon(name: string): NamespaceProcess | undefined {
    return this.daemons.get(name);
  }

  /**
   * A daemon's Prometheus samples from its /metrics, fetched inside its namespace, keyed by name with
   * labels as exposed (`wardline_connections{path="direct"}`).
   */
  async metrics(name: string): Promise<Map<string, number>> {
    const t = this.topology;
    const [host, port] =
      name === "client" ? [t.client, READY_PORT.client] : name === "relay" ? [t.relay, READY_PORT.relay] : [t.gateways.find((g) => g.role === name), READY_PORT.gateway];
    if (host === undefined) throw new RangeError(`the lab has no daemon named ${name}`);
    const text = await t.run(host, "curl", ["-sf", "--max-time", "2", `http://127.0.0.1:${port}/metrics`]);
    const samples = new Map<string, number>();
    for (const line of text.split("\n")) {
      const sample = /^(\w+(?:\{[^}]*\})?) (\S+)$/.exec(line);
      if (sample) samples.set(sample[1]!, Number(sample[2]));
    }
    return samples;
  }

  /** The portal's process while one was started (it may have exited since). */
  get portal(): NamespaceProcess | undefined {
    return this.portalProcess;
  }

  // --- 1 and 2: the resource host's second address, and DNS ---

  private async startDns(): Promise<void> {
    const t = this.topology;
    t.runSync(t.resource, "ip", ["addr", "add", `${this.restrictedAddress}/24`, "dev", "eth0"]);
    await t.startDns(t.resource, { [INTERNAL_ZONE]: [t.resource.address] });
    await t.startDns(t.portal, { [PUBLIC_ZONE]: [t.portal.address] });
    for (const gateway of t.gateways) t.setResolvers(gateway, [t.resource.address]);
    t.setResolvers(t.client, [t.portal.address]);
  }

  // --- 3: the portal ---

  private async initAdmin(): Promise<string> {
    const proc = this.wardline(this.topology.portal, ["portal", "--init-admin", LAB_ADMIN, "--account", ACCOUNT, "--data-dir", this.portalData, "--public-url", this.portalUrl]);
    const [code] = await Promise.all([proc.exited, proc.closed]);
    const password = /^password\s+(\S+)$/m.exec(proc.output())?.[1];
    if (code !== 0 || password === undefined) throw new Error(`wardline portal --init-admin printed no password: ${proc.diagnostics()}`);
    return password;
  }

  /** Starts the portal on the lab's data dir (again, after a kill or stop) and waits until it answers GET /api/health. */
  async startPortal(): Promise<NamespaceProcess> {
    if (this.portalProcess?.running === true) throw new Error("the portal is running: stop it first");
    const proc = this.wardline(this.topology.portal, ["portal", "--host", "0.0.0.0", "--port", String(PORTAL_PORT), "--data-dir", this.portalData, "--public-url", this.portalUrl]);
    this.portalProcess = proc;
    await this.waitReady(this.topology.portal, `${this.portalUrl}/api/health`, proc, PORTAL_START_MS);
    return proc;
  }

  // --- 4: the API credential ---

  private async signIn(password: string): Promise<void> {
    const session = await this.api<unknown>("POST", `/api/auth/${ACCOUNT}/password`, { email: LAB_ADMIN, password });
    const cookie = session.headers["set-cookie"]?.map((c) => /^wardline_session=([^;]+)/.exec(c)?.[1]).find((v) => v !== undefined);
    if (cookie === undefined) throw new Error("the password sign-in set no wardline_session cookie");
    // A browser session token also works as a bearer token, and then needs no CSRF header.
    this.setCredential(decodeURIComponent(cookie));
    const client = await this.api<ActorView>("POST", "/api/actors", { type: "api_client", name: "access lab" });
    const token = await this.api<TokenView & { token: string }>("POST", "/api/tokens", { actor_id: client.body.id, name: "access lab" });
    await this.api("POST", "/api/auth/sign_out");
    this.setCredential(token.body.token);
    this.apiClientId = client.body.id;
  }

  private setCredential(token: string): void {
    writeFileSync(this.credentialFile, `authorization: Bearer ${token}\n`, { mode: 0o600 });
  }

  // --- 5 and 6: provisioning and the token files ---

  private async provision(): Promise<void> {
    const t = this.topology;
    const site = (await this.api<SiteView>("POST", "/api/sites", { name: "lab site" })).body;
    for (const [i, gateway] of t.gateways.entries()) {
      const issued = await this.api<{ token: string }>("POST", `/api/sites/${site.id}/gateway_tokens`, { name: gateway.role });
      writeSecret(this.tokenFiles.gateways[i]!, issued.body.token);
    }
    writeSecret(this.tokenFiles.relay, (await this.api<{ token: string }>("POST", "/api/relay_tokens", { name: "lab relay" })).body.token);
    const client = (await this.api<ActorView>("POST", "/api/actors", { type: "service_account", name: "lab client" })).body;
    writeSecret(this.tokenFiles.client, (await this.api<{ token: string }>("POST", "/api/tokens", { actor_id: client.id, name: "lab client" })).body.token);
    const group = (await this.api<GroupView>("POST", "/api/groups", { name: "lab users" })).body;
    await this.api("PUT", `/api/groups/${group.id}/members/${client.id}`);
    const other = (await this.api<GroupView>("POST", "/api/groups", { name: "lab others" })).body;
    const siteIds = [site.id];
    const wildcard = await this.addResource({ type: "dns", name: "internal names", address: `*.${INTERNAL_ZONE}`, siteIds });
    const cidr = await this.addResource({ type: "cidr", name: "resource host", address: `${t.resource.address}/32`, siteIds });
    const restricted = await this.addResource({ type: "ip", name: "restricted", address: this.restrictedAddress, siteIds });
    this.idsValue = {
      siteId: site.id,
      apiClientId: this.apiClientId,
      clientActorId: client.id,
      groupId: group.id,
      otherGroupId: other.id,
      resources: { wildcard: wildcard.id, cidr: cidr.id, restricted: restricted.id },
      policies: {
        wildcard: (await this.addPolicy(group.id, wildcard.id)).id,
        cidr: (await this.addPolicy(group.id, cidr.id)).id,
        restricted: (await this.addPolicy(other.id, restricted.id)).id,
      },
    };
  }

  /** Creates a resource, in the lab's site unless the spec names sites. */
  async addResource(spec: ResourceSpec): Promise<ResourceView> {
    const { siteIds = [this.ids.siteId], ...fields } = spec;
    return (await this.api<ResourceView>("POST", "/api/resources", { ...fields, site_ids: siteIds })).body;
  }

  /** Deletes a resource, with its policies. */
  async deleteResource(id: string): Promise<void> {
    await this.api("DELETE", `/api/resources/${id}`);
  }

  /** Grants a group a resource, without conditions. */
  async addPolicy(groupId: string, resourceId: string): Promise<PolicyView> {
    return (await this.api<PolicyView>("POST", "/api/policies", { group_id: groupId, resource_id: resourceId })).body;
  }

  /** Deletes a policy; the portal revokes what it granted. */
  async deletePolicy(id: string): Promise<void> {
    await this.api("DELETE", `/api/policies/${id}`);
  }

  // --- the API, through curl in the portal namespace ---

  /**
   * Calls the portal's API with the lab's API token (once it has one). Throws an ApiError carrying
   * the problem details on a non-2xx answer, unless it is options.expectStatus.
   */
  async api<T = unknown>(method: string, path: string, body?: unknown, options: ApiCallOptions = {}): Promise<ApiReply<T>> {
    const oneOff = options.token === undefined ? undefined : join(this.dir, "secrets", `call-${this.oneOffHeaders++}.header`);
    if (oneOff !== undefined) writeFileSync(oneOff, `authorization: Bearer ${options.token}\n`, { mode: 0o600 });
    const headerFile = oneOff ?? (existsSync(this.credentialFile) ? this.credentialFile : undefined);
    const args = ["-sS", "--max-time", "20", "-X", method, "-H", "Expect:", "-w", `${REPLY_MARK}%{http_code}\n%{header_json}`];
    if (headerFile !== undefined) args.push("-H", `@${headerFile}`);
    if (body !== undefined) args.push("-H", "content-type: application/json", "--data-binary", "@-");
    let out: string;
    try {
      out = await this.topology.run(this.topology.portal, "curl", [...args, `${this.portalUrl}${path}`], 30_000, body === undefined ? undefined : JSON.stringify(body));
    } finally {
      if (oneOff !== undefined) rmSync(oneOff, { force: true });
    }
    const mark = out.lastIndexOf(REPLY_MARK);
    const text = out.slice(0, mark);
    const trailer = out.slice(mark + REPLY_MARK.length);
    const newline = trailer.indexOf("\n");
    const status = Number(trailer.slice(0, newline));
    const headers = JSON.parse(trailer.slice(newline + 1)) as Record<string, string[]>;
    const parsed: unknown = /json/.test(headers["content-type"]?.[0] ?? "") && text !== "" ? JSON.parse(text) : text;
    const expected = options.expectStatus === undefined ? status >= 200 && status < 300 : status === options.expectStatus;
    if (!expected) throw new ApiError(method, path, status, parsed as ProblemDetails | string);
    return { status, body: parsed as T, headers };
  }

  /** Every item of a paginated list (GET `path`, following next_cursor). */
  async list<T>(path: string): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | null = null;
    do {
      const separator = path.includes("?") ? "&" : "?";
      const page: ListBody<T> = (await this.api<ListBody<T>>("GET", cursor === null ? path : `${path}${separator}cursor=${encodeURIComponent(cursor)}`)).body;
      items.push(...page.data);
      cursor = page.next_cursor;
    } while (cursor !== null);
    return items;
  }

  // --- 7: the daemons ---

  /** Starts the relay registered with the portal and waits until it is ready. */
  startRelay(): Promise<NamespaceProcess> {
    const t = this.topology;
    return this.startDaemon("relay", t.relay, READY_PORT.relay, [
      "relay", "--portal-url", this.portalUrl, "--token-file", this.tokenFiles.relay,
      "--public-ip4", t.relay.address, "--allow-private-peers", "--http", `127.0.0.1:${READY_PORT.relay}`,
    ]);
  }

  /** Starts gateway `index` of the site and waits until it is ready. */
  startGateway(index = 0): Promise<NamespaceProcess> {
    const gateway = this.topology.gateways[index];
    if (gateway === undefined) throw new RangeError(`the topology has ${this.topology.gateways.length} gateways, not ${index + 1}`);
    return this.startDaemon(gateway.role, gateway, READY_PORT.gateway, [
      "gateway", "--portal-url", this.portalUrl, "--token-file", this.tokenFiles.gateways[index]!,
      "--state-dir", this.stateDir(gateway.role), "--http", `127.0.0.1:${READY_PORT.gateway}`, "--log-format", "json", "--log-level", process.env.LAB_LOG_LEVEL ?? "info",
    ]);
  }

  /** Starts the client (as the provisioned service account) and waits until it is ready. */
  startClient(): Promise<NamespaceProcess> {
    return this.startDaemon("client", this.topology.client, READY_PORT.client, [
      "client", "--portal-url", this.portalUrl, "--token-file", this.tokenFiles.client,
      "--state-dir", this.stateDir("client"), "--http", `127.0.0.1:${READY_PORT.client}`, "--log-format", "json", "--log-level", process.env.LAB_LOG_LEVEL ?? "info",
    ]);
  }

  private async startDaemon(name: string, host: Host, port: number, args: string[]): Promise<NamespaceProcess> {
    if (this.daemons.get(name)?.running === true) throw new Error(`the ${name} is running: stop it first`);
    const proc = this.wardline(host, args);
    this.daemons.set(name, proc);
    await this.waitReady(host, `http://127.0.0.1:${port}/readyz`, proc, DAEMON_START_MS);
    return proc;
  }

  /** A daemon's state dir; it survives a restart, as on a device. */
  private stateDir(name: string): string {
    const dir = join(this.dir, "state", name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** `node bin/wardline …` in a namespace, with no WARDLINE_* or DATABASE_URL from this process's environment. */
  private wardline(host: Host, args: string[]): NamespaceProcess {
    const inherited = Object.keys(process.env).filter((key) => key.startsWith("WARDLINE_") || key === "DATABASE_URL");
    return this.topology.spawn(host, process.execPath, [...(process.env.LAB_NODE_FLAGS ? process.env.LAB_NODE_FLAGS.split(" ") : []), WARDLINE_BIN, ...args], Object.fromEntries(inherited.map((key) => [key, undefined])));
  }

  /** Polls `url` with curl inside the namespace until it answers 2xx; throws if the process exits or time runs out. */
  private async waitReady(host: Host, url: string, proc: NamespaceProcess, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ok = await this.topology.run(host, "curl", ["-sf", "--max-time", "2", "-o", "/dev/null", url]).then(() => true, () => false);
      if (ok) return;
      if (!proc.running) throw new Error(`${proc.name} exited before ${url} answered: ${proc.diagnostics()}`);
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms: ${proc.diagnostics()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Stops every process (by PID), removes the namespaces, then the temp dir. Every call shares the one teardown. */
  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      try {
        await this.topology.destroy();
      } finally {
        rmSync(this.dir, { recursive: true, force: true });
      }
    })();
    return this.destroying;
  }
}

/** A secret for a daemon: readable by its owner only, as --token-file expects. */
function writeSecret(path: string, secret: string): void {
  writeFileSync(path, secret, { mode: 0o600 });
}
