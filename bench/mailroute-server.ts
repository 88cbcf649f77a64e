/**
 * The mailroute under benchmark. Preferably a child process running exactly what an operator
 * runs (`node src/cli/main.ts start --…`, DESIGN §6 flags), so its RSS is its own and its CPU is
 * not shared with the load generator's event loop; when that entry point is missing or does not
 * come up, startMailroute in this process instead, and the result says which one ran.
 *
 * The child runs with the launcher's V8 flags (bin/service-node-flags.js), and from a fresh
 * type-stripped cache: the first child started brings the cache up to date with src/ (what
 * `npm start` does before it starts). A source edited since the last `npm run build:stripped`
 * would otherwise be stripped by Node at start, whose stripper stays resident (~15 MiB more RSS
 * in every figure, silently: it cost two sessions' runs their absolute numbers).
 *
 * Promises: a returned server answers SMTP on 127.0.0.1:`port` with a 220 greeting; `rss` reads
 * the server's own resident set (the whole bench process when in-process); `stop` ends the child
 * it started (SIGTERM, then SIGKILL after 5 s) and nothing else. Logging is at "warn" (child)
 * or silent (in-process), so log writes do not dominate the figures.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { SERVICE_ENVIRONMENT, SERVICE_NODE_FLAGS } from "../bin/service-node-flags.js";
import { freePort } from "../test/support/free-port.ts";
import { childAnonRss, childRss, processTreeRss, selfRss, type RssReader } from "./rss-sampler.ts";

export const REPO_ROOT = join(import.meta.dirname, "..");
export const CLI_ENTRY = join(REPO_ROOT, "src", "cli", "main.ts");
const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;

export type ServerMode = "child" | "in-process";

export interface BenchServer {
  readonly mode: ServerMode;
  /** How it runs, for the report. */
  readonly description: string;
  readonly port: number;
  /** The service's process id (the primary's with --processes n); null in-process, where it is the bench's own. */
  readonly pid: number | null;
  readonly rss: RssReader;
  /** The anonymous part of `rss` (rss-sampler.ts childAnonRss); null when it cannot be told apart (in-process). */
  readonly anonRss: RssReader | null;
  stop(): Promise<void>;
}

export interface ServerSettings {
  dataDir: string;
  dnsAddress: string;
  sinkPort: number;
  hostname: string;
  /** Flags added to (or overriding) the ones below, e.g. `transport`, `log-level`. */
  extraFlags?: Readonly<Record<string, string>>;
}

function flagsFor(settings: ServerSettings, smtpPort: number, httpPort: number): Record<string, string> {
  return {
    "data-dir": settings.dataDir,
    "smtp-host": "127.0.0.1",
    "smtp-port": String(smtpPort),
    // loopback and a free port: the default 8787 may belong to a developer's own instance
    "http-host": "127.0.0.1",
    "http-port": String(httpPort),
    hostname: settings.hostname,
    "dns-servers": settings.dnsAddress,
    "outbound-port": String(settings.sinkPort),
    "admin-token": "bench-admin-token",
    "log-level": "warn",
    ...settings.extraFlags,
  };
}

let strippedCacheChecked = false;

export async function startChildServer(settings: ServerSettings): Promise<BenchServer> {
  if (!existsSync(CLI_ENTRY)) throw new Error(`${CLI_ENTRY} does not exist`);
  if (!strippedCacheChecked) {
    // `npm run build:stripped`, as a child so its stripper stays out of this process's output and
    // memory; what it cannot write it says on stderr, shown here
    execFileSync(process.execPath, ["--disable-warning=ExperimentalWarning", join(REPO_ROOT, "scripts", "strip-types.js")], { stdio: ["ignore", "ignore", "inherit"], timeout: 60_000 });
    strippedCacheChecked = true;
  }
  const port = await freePort();
  const flags = flagsFor(settings, port, await freePort());
  const argv = [CLI_ENTRY, "start", ...Object.entries(flags).flatMap(([name, value]) => [`--${name}`, value])];
  // MAILROUTE_* from the caller's shell must not change what is measured (flags win anyway,
  // but an unflagged one such as MAILROUTE_TRANSPORT would slip through)
  // and the service's own environment (service-node-flags.js), as the launcher gives it
  // (all but the stripped cache's location: the child reads the cache refreshed above)
  const env = { ...SERVICE_ENVIRONMENT, ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("MAILROUTE_") || name === "MAILROUTE_STRIPPED_TS_CACHE")) };
  // --processes n: the banner comes once every process serves, so stdout goes to a file to watch
  const processes = Number(flags.processes ?? "1");
  const banner = processes > 1 ? join(settings.dataDir, "..", `${settings.dataDir.split("/").at(-1)}-stdout.log`) : null;
  const stdoutFd = banner === null ? "ignore" : openSync(banner, "w");
  // process.execPath: the pinned Node 24 that runs this bench, which strips the TypeScript types
  // with the V8 flags the `mailroute` launcher gives the service: the bench measures what operators run
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, ...argv], { cwd: REPO_ROOT, env, stdio: ["ignore", stdoutFd, "pipe"] });
  if (typeof stdoutFd === "number") closeSync(stdoutFd);
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (text: string) => {
    stderr = (stderr + text).slice(-4000);
  });
  let exit: string | null = null;
  child.once("exit", (code, signal) => {
    exit = signal === null ? `exit code ${code}` : `signal ${signal}`;
  });
  // if the bench dies on an uncaught error, the server must not outlive it
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const stop = async () => {
    process.off("exit", killOnExit);
    await stopChild(child);
  };
  try {
    await waitForGreeting(port, () => (exit === null ? null : `mailroute exited (${exit}) before answering SMTP: ${stderr.trim() || "no output"}`));
    if (banner !== null) await waitForBanner(banner, () => exit);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    mode: "child",
    description: `child process (pid ${child.pid}): node src/cli/main.ts start${processes > 1 ? ` --processes ${processes}` : ""}`,
    port,
    pid: child.pid!,
    // --processes n: the primary and every service process
    rss: processes > 1 ? processTreeRss(child.pid!) : childRss(child.pid!),
    anonRss: processes > 1 ? processTreeRss(child.pid!, childAnonRss) : childAnonRss(child.pid!),
    stop,
  };
}

export async function startInProcessServer(settings: ServerSettings): Promise<BenchServer> {
  // loaded only when needed, so a child-process run keeps the service out of the load generator
  const { silentLogger } = await import("../src/analytics/structured-log.ts");
  const { startMailroute } = await import("../src/cli/start-service.ts");
  const { loadSettings } = await import("../src/config/settings.ts");
  const mailroute = await startMailroute(loadSettings(flagsFor(settings, 0, await freePort()), {}), { logger: silentLogger, closeTimeoutMs: 1000 });
  return {
    mode: "in-process",
    description: "in-process startMailroute (silent logger); RSS is the whole bench process",
    port: mailroute.smtp.port,
    pid: null,
    rss: selfRss(),
    anonRss: null,
    stop: () => mailroute.close(),
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

// a port free on 127.0.0.1 right now: the tests' own helper, re-exported for the benches that import it from here
export { freePort };

/** --processes n: the primary prints its banner once every service process serves. */
async function waitForBanner(file: string, exited: () => string | null): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited() !== null) throw new Error(`mailroute exited (${exited()}) before all its processes served`);
    if (readFileSync(file, "latin1").includes("mailroute is receiving mail on")) return;
    await sleep(100);
  }
  throw new Error(`mailroute's processes did not all serve within ${READY_TIMEOUT_MS} ms`);
}

async function waitForGreeting(port: number, failed: () => string | null): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = "no attempt";
  while (Date.now() < deadline) {
    const problem = failed();
    if (problem !== null) throw new Error(problem);
    try {
      const line = await greetingLine(port);
      if (line.startsWith("220")) return;
      last = `greeting "${line}"`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`mailroute did not greet on 127.0.0.1:${port} within ${READY_TIMEOUT_MS} ms (${last})`);
}

function greetingLine(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, noDelay: true });
    let text = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("no greeting within 2 s"));
    }, 2000);
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      text += chunk;
      const end = text.indexOf("\r\n");
      if (end < 0) return;
      clearTimeout(timer);
      socket.end("QUIT\r\n");
      resolve(text.slice(0, end));
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
