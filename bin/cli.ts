// `wardline <command>`: the one entry point for every Wardline process. It runs the portal, the
// relay, the gateway and client daemons, all three of portal, relay and gateway at once (up), a
// standalone WireGuard interface (wg) and benchmarks.
//
// Exit status: 0 on success, 1 when a command fails at run time, 2 on a usage error.

import { relative } from "node:path";
import { recordSection, renderReportText } from "../bench/harness.js";
import type { BenchSuite } from "../bench/harness.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, packageVersion, parseCommandLine } from "./args.js";

/** Where the CLI writes; tests pass their own. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Whether stderr is a terminal (progress lines go there only then). */
  stderrIsTty: boolean;
}

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  stderrIsTty: process.stderr.isTTY === true,
};


/** Benchmark suites, loaded only when run so `--help` stays instant. */
const SUITES: Record<string, { summary: string; load: () => Promise<BenchSuite> }> = {
  engine: {
    summary: "WireGuard transport seal/open (ChaCha20-Poly1305) and BLAKE2s in the WebAssembly engine, vs node:crypto, @noble and libsodium",
    load: async () => (await import("../bench/engine.js")).engineSuite,
  },
  handshake: {
    summary: "WireGuard (Noise_IKpsk2) handshakes per second, and X25519: @noble/curves vs node:crypto",
    load: async () => (await import("../bench/handshake.js")).handshakeSuite,
  },
  tunnel: {
    summary: "iperf3 TCP and small-packet UDP through ours and wireguard-go between two namespaces, the bare veth as ceiling; CPU per GB",
    load: async () => (await import("../bench/tunnel.js")).tunnelSuite,
  },
  relay: {
    summary: "TURN ChannelData through ours and coturn's turnserver between two namespaces: messages/s at ≤ 0.1 % loss, Mbit/s, CPU per packet",
    load: async () => (await import("../bench/relay.js")).relaySuite,
  },
  portal: {
    summary: "the portal's realtime side over WebSockets on PostgreSQL: authorizations/s with p50/p99, revocation latency, memory per connected device, against the issue's targets",
    load: async () => (await import("../bench/portal.js")).portalSuite,
  },
  ui: {
    summary: "the admin UI's first load in Chromium: every page cold and warm, ready time, paints, layout shift and bytes, against the browser's floor",
    load: async () => (await import("../bench/ui.js")).uiSuite,
  },
  e2e: {
    summary: "issue 8 end to end in namespaces behind NAT: iperf3 through client → gateway → resource, direct and relayed, vs wireguard-go on the same topology; connection setup p50/p99",
    load: async () => (await import("../bench/e2e.js")).e2eSuite,
  },
};

const MAIN_HELP = `Usage: wardline <command> [options]

Commands:
  portal            run the portal (REST API) on the embedded database or DATABASE_URL
  wg <interface>    run a standalone userspace WireGuard interface (a drop-in for wireguard-go)
  relay             run a TURN relay for clients and gateways
  gateway           run a gateway: clients reach its site's resources through it
  client            run a headless client: reach the resources its policies allow
  up                run portal, relay and gateway together on this host, for a first try
  bench <suite>     measure a part of Wardline against reference implementations
  help [command]    show this help, or a command's help

Options:
  -h, --help        show this help
  -v, --version     print the version

Run 'wardline <command> --help' for a command's options ('wardline bench --help' lists the
benchmark suites).
`;

function benchHelp(): string {
  const width = Math.max(...Object.keys(SUITES).map((name) => name.length));
  const suites = Object.entries(SUITES)
    .map(([name, suite]) => `  ${name.padEnd(width)}  ${suite.summary}`)
    .join("\n");
  return `Usage: wardline bench <suite> [options]

Suites:
${suites}

Options:
  --quick                a few seconds for the whole suite; rough figures, for checking that it runs
  --json                 print exactly one JSON object on stdout (figures, ratios, targets, machine)
  --build release|debug  which engine build to measure (default: release)
  --record               write the figures into the suite's section of bench/RESULTS.md
  -h, --help             show this help

Without --quick a suite takes about a minute: every figure is the median of interleaved samples.
Throughput is in MB/s (10^6 payload bytes per second); ratios are ours ÷ anchor from the same run.
Missed targets are reported, not turned into a failing exit status.
`;
}

/** The command line as the user typed it, for RESULTS.md. */
function commandLine(argv: readonly string[]): string {
  const quote = (arg: string): string => (/^[\w./:=@+-]+$/.test(arg) ? arg : JSON.stringify(arg));
  const script = process.argv[1];
  const entry = script && !relative(process.cwd(), script).startsWith("..")
    ? `node ${relative(process.cwd(), script) || script}`
    : "wardline";
  return [entry, ...argv.map(quote)].join(" ");
}

function usageError(io: CliIo, message: string, help: string): number {
  io.stderr(`wardline: ${message}\n\n${help}`);
  return EXIT_USAGE;
}

async function bench(argv: readonly string[], io: CliIo, fullArgv: readonly string[]): Promise<number> {
  const parsed = parseCommandLine(argv, {
    quick: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    record: { type: "boolean", default: false },
    build: { type: "string", default: "release" },
    help: { type: "boolean", short: "h", default: false },
  });
  if ("error" in parsed) return usageError(io, parsed.error, benchHelp());
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(benchHelp());
    return EXIT_OK;
  }
  const [name, ...extra] = positionals;
  if (name === undefined) return usageError(io, "bench needs a suite name", benchHelp());
  if (extra.length > 0) return usageError(io, `unexpected argument '${extra[0]}'`, benchHelp());
  const entry = SUITES[name];
  if (!entry) return usageError(io, `unknown bench suite '${name}'`, benchHelp());
  const build = values.build;
  if (build !== "release" && build !== "debug") {
    return usageError(io, `--build must be release or debug, got '${build}'`, benchHelp());
  }
  if (values.record && values.quick) {
    io.stderr("wardline: warning: recording quick-mode figures; record full runs for anything you compare\n");
  }

  const progress = io.stderrIsTty
    ? (line: string): void => io.stderr(`\r\x1b[Kwardline bench ${name}: ${line}`)
    : undefined;
  try {
    const suite = await entry.load();
    const report = await suite.run({ quick: values.quick, build, command: commandLine(fullArgv), ...(progress ? { progress } : {}) });
    if (progress) io.stderr("\r\x1b[K");
    const tables = suite.tables(report);
    if (values.json) {
      io.stdout(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      io.stdout(`${renderReportText(report, tables)}\n`);
    }
    if (values.record) {
      const path = recordSection(report, tables);
      io.stderr(`wardline: recorded the ${name} section of ${relative(process.cwd(), path) || path}\n`);
    }
    return EXIT_OK;
  } catch (error) {
    if (progress) io.stderr("\r\x1b[K");
    const err = error as Error;
    io.stderr(`wardline bench ${name}: ${err.message}\n`);
    if (process.env.WARDLINE_DEBUG && err.stack) io.stderr(`${err.stack}\n`);
    return EXIT_FAILURE;
  }
}

/** Runs the CLI with the arguments after `wardline`; resolves to the exit status. */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      return usageError(io, "missing command", MAIN_HELP);
    case "-h":
    case "--help":
      io.stdout(MAIN_HELP);
      return EXIT_OK;
    case "help": {
      const topic = rest[0];
      if (topic === undefined) io.stdout(MAIN_HELP);
      else if (topic === "bench") io.stdout(benchHelp());
      else if (topic === "wg") io.stdout((await import("./wg.js")).WG_HELP);
      else if (topic === "relay") io.stdout((await import("./relay.js")).RELAY_HELP);
      else if (topic === "portal") io.stdout((await import("./portal.js")).PORTAL_HELP);
      else if (topic === "gateway") io.stdout((await import("./device.js")).GATEWAY_HELP);
      else if (topic === "client") io.stdout((await import("./device.js")).CLIENT_HELP);
      else if (topic === "up") io.stdout((await import("./up.js")).UP_HELP);
      else return usageError(io, `no help for '${topic}': it is not a command`, MAIN_HELP);
      return EXIT_OK;
    }
    case "-v":
    case "--version":
      io.stdout(`wardline ${packageVersion()}\n`);
      return EXIT_OK;
    case "bench":
      return bench(rest, io, argv);
    case "wg":
      return (await import("./wg.js")).wgCommand(rest, io);
    case "relay":
      return (await import("./relay.js")).relayCommand(rest, io);
    case "portal":
      return (await import("./portal.js")).portalCommand(rest, io);
    case "gateway":
    case "client":
      return (await import("./device.js")).deviceCommand(command, rest, io);
    case "up":
      return (await import("./up.js")).upCommand(rest, io);
    default:
      return usageError(io, `unknown command '${command}'`, MAIN_HELP);
  }
}
