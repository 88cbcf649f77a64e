/**
 * Postfix as the benchmark's yardstick: installed from Debian's archive when missing, then run
 * as a private instance that does what mailroute does for the bench zone — accept mail for
 * the bench's addresses on a loopback port and forward it (plain virtual aliases) to a sink.
 *
 * Promises:
 * - the instance is private: its own config, queue and data directories under one temporary
 *   directory (`postfix -c <dir>`), its smtpd on the given 127.0.0.1 port only, never port 25;
 *   the system's own Postfix configuration and queue are not read, written or started;
 * - no DNS: the next hop is `relayhost = [127.0.0.1]:<sink port>` (brackets: no MX lookup) and
 *   `smtp_dns_support_level = disabled`; the reverse lookup of clients is off;
 * - otherwise Postfix's defaults, as a packager ships them: the queue is fsync'd, every
 *   message is logged (to a file in the instance, since there is no syslog here), process
 *   limits and connection caching are the defaults;
 * - `stop` stops the master and every daemon it started and removes the directory; `rss` is
 *   the summed proportional set size of the master and its children (treePss).
 */
import { execFile, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import type { RssReader } from "./rss-sampler.ts";

const run = promisify(execFile);
export const POSTFIX_BIN = "/usr/sbin/postfix";
export const SMTP_SOURCE_BIN = "/usr/sbin/smtp-source";
export const SMTP_SINK_BIN = "/usr/sbin/smtp-sink";
const READY_TIMEOUT_MS = 20_000;

export interface PostfixForwarder {
  readonly port: number;
  readonly version: string;
  /** Memory of the whole instance (PSS of the master and its daemons), bytes. */
  readonly rss: RssReader;
  /** Messages still in the queue (incoming, active, deferred). */
  queued(): number;
  stop(): Promise<void>;
}

/**
 * Postfix, smtp-source and smtp-sink present, or installed with apt-get (non-interactive; we
 * are root on the bench machine). Another apt run holding the lock is waited for, bounded.
 */
export function ensurePostfixInstalled(progress: (text: string) => void): void {
  if ([POSTFIX_BIN, SMTP_SOURCE_BIN, SMTP_SINK_BIN].every((path) => existsSync(path))) return;
  progress("installing postfix from Debian's archive (apt-get install -y postfix)");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const lock = ["-o", "DPkg::Lock::Timeout=300"];
  // the package list may be missing or stale on a fresh machine
  spawnSync("apt-get", [...lock, "update", "-qq"], { env, stdio: "ignore", timeout: 300_000 });
  const install = spawnSync("apt-get", [...lock, "install", "-y", "-qq", "postfix"], { env, encoding: "utf8", timeout: 600_000 });
  if (install.status !== 0 || !existsSync(SMTP_SOURCE_BIN)) {
    throw new Error(`apt-get install postfix failed (${install.status ?? install.signal}): ${(install.stderr ?? "").trim().slice(-500)}`);
  }
}

export interface PostfixForwarderOptions {
  port: number;
  sinkPort: number;
  /** The aliases: mail for `from` is forwarded to `to` (each `from` domain becomes a virtual alias domain). */
  aliases: readonly { from: string; to: string }[];
}

export async function startPostfixForwarder(options: PostfixForwarderOptions): Promise<PostfixForwarder> {
  const root = mkdtempSync(join(tmpdir(), "mailroute-bench-postfix-"));
  const configDir = join(root, "etc");
  const queueDir = join(root, "queue");
  const dataDir = join(root, "data");
  for (const dir of [configDir, queueDir, dataDir]) mkdirSync(dir, { recursive: true });
  const { uid } = postfixIds();
  // mkdtemp makes it 0700: the daemons, running as "postfix", must reach the queue and data dirs
  chmodSync(root, 0o755);
  // the master's lock and the TLS/PRNG state files live here; the daemons run as "postfix"
  chownSync(dataDir, uid, -1);
  writeFileSync(join(configDir, "main.cf"), mainCf(root, options));
  writeFileSync(join(configDir, "master.cf"), masterCf(options.port));
  const version = (await run("postconf", ["-c", configDir, "-h", "mail_version"])).stdout.trim();
  // creates the queue directories with Postfix's ownership and modes
  await postfix(configDir, "check");
  await postfix(configDir, "start");
  const pidFile = join(queueDir, "pid", "master.pid");
  const stop = async () => {
    await postfix(configDir, "stop").catch(() => postfix(configDir, "abort").catch(() => undefined));
    // the master exits after its children; wait for it, bounded, before removing the queue
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && masterPid(pidFile) !== null) await sleep(100);
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await waitForPort(options.port);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}; log: ${readTail(join(root, "maillog"))}`);
  }
  return {
    port: options.port,
    version,
    rss: () => {
      const pid = masterPid(pidFile);
      return pid === null ? null : treePss(pid);
    },
    queued: () => ["incoming", "active", "deferred"].reduce((sum, dir) => sum + countFiles(join(queueDir, dir)), 0),
    stop,
  };
}

function mainCf(root: string, options: PostfixForwarderOptions): string {
  return `${[
    "compatibility_level = 3.6",
    `queue_directory = ${join(root, "queue")}`,
    `data_directory = ${join(root, "data")}`,
    "mail_owner = postfix",
    "setgid_group = postdrop",
    "myhostname = postfix.bench.test",
    "mydestination =",
    "inet_interfaces = 127.0.0.1",
    "inet_protocols = ipv4",
    "mynetworks = 127.0.0.0/8",
    "alias_maps =",
    "alias_database =",
    "biff = no",
    // mailroute's limit (25 MiB); Postfix's default (10,240,000 bytes) would refuse the 10 MiB cell
    "message_size_limit = 26214400",
    // the forward: a virtual alias domain with one alias, as one routing rule in mailroute
    `virtual_alias_domains = ${[...new Set(options.aliases.map((alias) => alias.from.slice(alias.from.indexOf("@") + 1)))].join(" ")}`,
    `virtual_alias_maps = inline:{ ${options.aliases.map((alias) => `${alias.from}=${alias.to}`).join(", ")} }`,
    // the next hop is the sink, without DNS
    `relayhost = [127.0.0.1]:${options.sinkPort}`,
    "smtp_dns_support_level = disabled",
    "smtpd_peername_lookup = no",
    // no syslog on the bench machine: Postfix logs each message to a file, through postlogd
    `maillog_file = ${join(root, "maillog")}`,
    `maillog_file_prefixes = ${root}`,
  ].join("\n")}\n`;
}

/** Debian's master.cf services, not chrooted (a chroot would need copies of /etc files), smtpd on our port. */
function masterCf(port: number): string {
  return `${[
    `127.0.0.1:${port} inet n - n - - smtpd`,
    "pickup unix n - n 60 1 pickup",
    "cleanup unix n - n - 0 cleanup",
    "qmgr unix n - n 300 1 qmgr",
    "rewrite unix - - n - - trivial-rewrite",
    "bounce unix - - n - 0 bounce",
    "defer unix - - n - 0 bounce",
    "trace unix - - n - 0 bounce",
    "verify unix - - n - 1 verify",
    "flush unix n - n 1000? 0 flush",
    "proxymap unix - - n - - proxymap",
    "smtp unix - - n - - smtp",
    "relay unix - - n - - smtp",
    "showq unix n - n - - showq",
    "error unix - - n - - error",
    "retry unix - - n - - error",
    "discard unix - - n - - discard",
    "anvil unix - - n - 1 anvil",
    "scache unix - - n - 1 scache",
    "postlog unix-dgram n - n - 1 postlogd",
  ].join("\n")}\n`;
}

async function postfix(configDir: string, command: string): Promise<void> {
  try {
    await run(POSTFIX_BIN, ["-c", configDir, command], { timeout: 30_000 });
  } catch (error) {
    const failure = error as { stderr?: string; message: string };
    throw new Error(`postfix ${command}: ${(failure.stderr ?? "").trim() || failure.message}`);
  }
}

function postfixIds(): { uid: number } {
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((entry) => entry.startsWith("postfix:"));
  const uid = Number(line?.split(":")[2]);
  if (!Number.isInteger(uid)) throw new Error('no "postfix" user in /etc/passwd: is the postfix package installed?');
  return { uid };
}

function masterPid(pidFile: string): number | null {
  try {
    const pid = Number(readFileSync(pidFile, "latin1").trim());
    return Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`) ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Proportional set size (PSS: each shared page divided among the processes sharing it) of `pid`
 * and of every process whose parent is `pid` (Postfix daemons are the master's direct
 * children). Summing their RSS instead would count the shared libraries once per smtpd.
 */
function treePss(pid: number): number | null {
  let total = 0;
  let found = false;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, "latin1");
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
      if (Number(entry) !== pid && ppid !== pid) continue;
      const pss = /^Pss:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${entry}/smaps_rollup`, "latin1"));
      if (pss !== null) {
        total += Number(pss[1]) * 1024;
        found = true;
      }
    } catch {
      // the process exited between readdir and read
    }
  }
  return found ? total : null;
}

function countFiles(dir: string): number {
  let count = 0;
  try {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      // Postfix hashes queue files into one-letter subdirectories
      count += entry.isDirectory() ? countFiles(join(dir, entry.name)) : 1;
    }
  } catch {
    return count;
  }
  return count;
}

async function waitForPort(port: number): Promise<void> {
  const { connect } = await import("node:net");
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const greeting = await new Promise<string | null>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port });
      socket.setEncoding("latin1");
      socket.setTimeout(2000, () => {
        socket.destroy();
        resolve(null);
      });
      socket.once("data", (text: string) => {
        socket.end("QUIT\r\n");
        resolve(text);
      });
      socket.once("error", () => resolve(null));
    });
    if (greeting?.startsWith("220")) return;
    await sleep(100);
  }
  throw new Error(`Postfix did not greet on 127.0.0.1:${port} within ${READY_TIMEOUT_MS} ms`);
}

function readTail(path: string): string {
  try {
    return readFileSync(path, "utf8").trim().split("\n").slice(-5).join(" | ");
  } catch {
    return "(no log)";
  }
}
