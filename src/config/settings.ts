/**
 * Runtime settings for `mailroute start` (DESIGN §6, the operator contract): each flag has an
 * environment twin MAILROUTE_<NAME>; a flag wins over the environment, which wins over the
 * default. The result is frozen. Errors name the setting and say what a valid value is.
 */
import { readFileSync } from "node:fs";
import { availableParallelism, hostname as machineHostname } from "node:os";
import { resolve } from "node:path";
import { normalizeDomain } from "../routing/email-address.ts";
import { ClusterKeyError, loadClusterKey, type ClusterKey } from "./cluster-key.ts";

export interface Settings {
  dataDir: string;
  database: string | null;
  /** --cluster-key-file; the key itself is `clusterKey` (the file is read once, at load). */
  clusterKeyFile: string | null;
  /** From --cluster-key-file or MAILROUTE_CLUSTER_KEY (environment only); null when neither is given. */
  clusterKey: ClusterKey | null;
  /** --workers-ai-url: where env.AI.run() goes (null: Workers AI is refused, no model runs here). */
  workersAiUrl: string | null;
  /** MAILROUTE_WORKERS_AI_TOKEN (environment only: a secret). */
  workersAiToken: string | null;
  /** --node-id; null: the id persisted in the data directory (config/node-id.ts). */
  nodeId: string | null;
  smtpPort: number;
  smtpHost: string;
  httpPort: number;
  httpHost: string;
  hostname: string;
  dnsServers: string[];
  outboundPort: number;
  transport: string;
  adminToken: string | null;
  /** Deadline for each complete inbound command, ms (RFC 5321 §4.5.3.2 suggests 5 minutes). */
  smtpTimeoutMs: number;
  /** Bound on the whole in-session relay of one message, ms. */
  relayTimeoutMs: number;
  maxRecipients: number;
  maxClients: number;
  maxMessageSize: number;
  logLevel: "debug" | "info" | "warn" | "error";
  /** DNS block list zones checked for every client (none by default). */
  dnsbl: string[];
  tlsCert: string | null;
  tlsKey: string | null;
  /** Extra trust roots (PEM) for outbound TLS and MTA-STS fetches. */
  caFile: string | null;
  dkimSelector: string;
  /** Also sign with Ed25519 (RFC 8463) as a second signature. */
  dkimEd25519: boolean;
  maxConnectionsPerIp: number;
  messagesPerMinutePerIp: number;
  maxCommandsBeforeMail: number;
  /** Clients that are part of this installation: never rate-limited, never refused for authentication. */
  trustedNetworks: string[];
  /** Load balancers allowed to send a PROXY protocol header (their clients' real addresses). */
  proxyProtocol: string[];
  /** Wall-clock limit of one Email Worker invocation, ms. */
  workerDeadlineMs: number;
  /** Memory cap per worker runtime process (one per account), MiB. */
  workerMemoryMb: number;
  /** Private/loopback networks worker fetch() may reach (all others private ranges are refused). */
  workerFetchAllow: string[];
  /** File the admin token was read from (`--admin-token-file`), so it never sits in the process list. */
  adminTokenFile: string | null;
  /** Start on port 25 even though --hostname is not a fully qualified domain name. */
  allowShortHostname: boolean;
  /** MTA-STS policy mode we serve: auto = testing until our certificates validate, then enforce. */
  mtaStsMode: MtaStsModeSetting;
  /** RFC 8555 directory URL for automatic certificates; null: ACME off. */
  acmeDirectory: string | null;
  /** Contact address given to the ACME CA (expiry and incident notices). */
  acmeEmail: string | null;
  /** HTTPS listener for the MTA-STS policy hosts (certificates from ACME); null: off. */
  httpsPort: number | null;
  /** A separate, token-less listener for GET /metrics (off when null); bind it to a private address. */
  metricsPort: number | null;
  metricsHost: string;
  /** Time a client has from connect, or from its last message, to its next DATA command, ms. */
  smtpTransactionTimeoutMs: number;
  /** DATA must arrive at least this fast: its deadline is --smtp-timeout plus bytes / rate, bytes/s. */
  smtpMinDataRate: number;
  /** Pause before greeting a client not yet known to wait for the greeting, ms (0: off). */
  greetPauseMs: number;
  /** Queue delivery mode (issue 13): first retry, backoff ceiling, give-up age and runner poll, ms. */
  queueMinBackoffMs: number;
  queueMaxBackoffMs: number;
  queueMaxAgeMs: number;
  queuePollMs: number;
  /** Verify SRS returns as postsrsd does (any sender, case-insensitive 4-character hashes). */
  srsPostsrsdCompat: boolean;
  /** Base URL of this server's HTTP port as people reach it (verification links); null: http://<http-host>:<http-port>. */
  publicUrl: string | null;
  /** Service processes `mailroute start` forks with node:cluster (issue 11); 1: no cluster, as before. */
  processes: number;
  /** Threads that sign and seal (signing-pool.ts); 0: on the SMTP thread; null ("auto"): the pool's default for the cores. */
  signingThreads: number | null;
  /** SQLite: make the per-message writes (ledger, events) on a thread of their own (sqlite-writer.ts). */
  storeWriterThread: boolean;
  /** Give memory back to the system when quiet after work that grew it (idle-memory-release.ts). */
  releaseIdleMemory: boolean;
}

function publicUrl(value: string): string | null {
  if (value.trim() === "") return null;
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new SettingsError("public-url", `"${value}" is not a URL (e.g. https://mail.example.com)`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new SettingsError("public-url", `"${value}" must be an http:// or https:// URL`);
  return url.toString().replace(/\/+$/, "");
}

export type MtaStsModeSetting = "testing" | "enforce" | "auto";

/** Shorthands for well-known ACME directories (RFC 8555 §7.1.1). */
export const ACME_DIRECTORIES: Readonly<Record<string, string>> = Object.freeze({
  letsencrypt: "https://acme-v02.api.letsencrypt.org/directory",
  "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
});

export interface SettingSpec {
  flag: string;
  kind: "string" | "port" | "integer" | "list" | "boolean";
  describe: string;
  default: string;
}

/** Settings without a flag: the cluster key is secret, so it comes from a file or the environment, never the command line. */
type FlaglessSetting = "clusterKey" | "workersAiToken";
type FlaggedSetting = Exclude<keyof Settings, FlaglessSetting>;
export const CLUSTER_KEY_ENV = "MAILROUTE_CLUSTER_KEY";
export const WORKERS_AI_TOKEN_ENV = "MAILROUTE_WORKERS_AI_TOKEN";

export const SETTING_SPECS: Readonly<Record<FlaggedSetting, SettingSpec>> = Object.freeze({
  dataDir: { flag: "data-dir", kind: "string", describe: "SQLite file, keys, secrets", default: "./data" },
  database: { flag: "database", kind: "string", describe: "postgres://… for cluster mode (default: SQLite in the data dir)", default: "" },
  clusterKeyFile: { flag: "cluster-key-file", kind: "string", describe: `file holding the cluster key (base64, 32 bytes) that seals shared keys on PostgreSQL; or ${CLUSTER_KEY_ENV}`, default: "" },
  nodeId: { flag: "node-id", kind: "string", describe: "this node's name in events and logs (default: host name + a random suffix kept in the data dir)", default: "" },
  smtpPort: { flag: "smtp-port", kind: "port", describe: "inbound SMTP port (25 in production)", default: "2525" },
  smtpHost: { flag: "smtp-host", kind: "string", describe: "inbound SMTP address (:: in production)", default: "127.0.0.1" },
  httpPort: { flag: "http-port", kind: "port", describe: "API, dashboard, MTA-STS, verify links", default: "8787" },
  httpHost: { flag: "http-host", kind: "string", describe: "HTTP listen address", default: "127.0.0.1" },
  hostname: { flag: "hostname", kind: "string", describe: "EHLO name and SRS domain", default: "" },
  dnsServers: { flag: "dns-servers", kind: "list", describe: "resolvers for MX/A/AAAA/TXT, host:port,…", default: "" },
  outboundPort: { flag: "outbound-port", kind: "port", describe: "port used for MX delivery", default: "25" },
  transport: { flag: "transport", kind: "string", describe: "domain=host:port,… static routes that bypass MX lookup", default: "" },
  adminToken: { flag: "admin-token", kind: "string", describe: "bootstrap API token (generated when absent)", default: "" },
  smtpTimeoutMs: { flag: "smtp-timeout", kind: "integer", describe: "ms a client has for each complete command (and to stay silent)", default: "300000" },
  relayTimeoutMs: { flag: "relay-timeout", kind: "integer", describe: "bound on one in-session relay in ms", default: "240000" },
  maxRecipients: { flag: "max-recipients", kind: "integer", describe: "recipients per message", default: "100" },
  maxClients: { flag: "max-clients", kind: "integer", describe: "concurrent inbound SMTP connections", default: "1000" },
  maxMessageSize: { flag: "max-message-size", kind: "integer", describe: "largest message in bytes (SIZE)", default: String(25 * 1024 * 1024) },
  logLevel: { flag: "log-level", kind: "string", describe: "debug, info, warn or error", default: "info" },
  dnsbl: { flag: "dnsbl", kind: "list", describe: "DNS block list zones, zone,… (production suggestion: zen.spamhaus.org,bl.spamcop.net)", default: "" },
  tlsCert: { flag: "tls-cert", kind: "string", describe: "PEM certificate for inbound STARTTLS (reloaded on change; self-signed when absent)", default: "" },
  tlsKey: { flag: "tls-key", kind: "string", describe: "PEM private key for --tls-cert", default: "" },
  caFile: { flag: "ca-file", kind: "string", describe: "extra trust roots for outbound TLS and MTA-STS", default: "" },
  dkimSelector: { flag: "dkim-selector", kind: "string", describe: "DKIM selector for our signatures", default: "mailroute" },
  dkimEd25519: { flag: "dkim-ed25519", kind: "boolean", describe: "add an Ed25519 DKIM signature (true/false)", default: "false" },
  maxConnectionsPerIp: { flag: "max-connections-per-ip", kind: "integer", describe: "concurrent connections per client IP", default: "20" },
  messagesPerMinutePerIp: { flag: "messages-per-minute", kind: "integer", describe: "messages per minute per client IP", default: "120" },
  maxCommandsBeforeMail: { flag: "max-commands-before-mail", kind: "integer", describe: "commands a client may send before MAIL FROM", default: "20" },
  workerDeadlineMs: { flag: "worker-deadline", kind: "integer", describe: "wall-clock limit of one Email Worker run, ms", default: "30000" },
  workerMemoryMb: { flag: "worker-memory", kind: "integer", describe: "memory cap per worker runtime process, MiB", default: "512" },
  workerFetchAllow: { flag: "worker-fetch-allow", kind: "list", describe: "private or loopback CIDRs worker fetch() may reach (none by default)", default: "" },
  publicUrl: { flag: "public-url", kind: "string", describe: "base URL people reach the HTTP port at (verification links); default http://<http-host>:<http-port>", default: "" },
  proxyProtocol: { flag: "proxy-protocol", kind: "list", describe: "addresses of load balancers that send a PROXY protocol header (none by default)", default: "" },
  smtpTransactionTimeoutMs: { flag: "smtp-transaction-timeout", kind: "integer", describe: "ms from connect or the last message to the next DATA", default: "600000" },
  queueMinBackoffMs: { flag: "queue-min-backoff", kind: "integer", describe: "queue mode: ms before the first retry, doubling after each (Postfix: 300 s)", default: "300000" },
  queueMaxBackoffMs: { flag: "queue-max-backoff", kind: "integer", describe: "queue mode: longest wait between retries in ms (Postfix: 4000 s)", default: "4000000" },
  queueMaxAgeMs: { flag: "queue-max-age", kind: "integer", describe: "queue mode: give up and send a DSN after this many ms (default 5 days)", default: String(5 * 86_400_000) },
  queuePollMs: { flag: "queue-poll", kind: "integer", describe: "queue mode: how often the runner looks for due messages, ms", default: "10000" },
  greetPauseMs: { flag: "greet-pause", kind: "integer", describe: "ms a new client must wait silently for the greeting (early talkers get 421; clients that waited are greeted at once for 24 h; 0: off)", default: "100" },
  smtpMinDataRate: { flag: "smtp-min-data-rate", kind: "integer", describe: "slowest DATA accepted, bytes/s (deadline: smtp-timeout + size / rate)", default: "500" },
  srsPostsrsdCompat: { flag: "srs-postsrsd-compat", kind: "boolean", describe: "accept SRS returns as postsrsd does: from any sender, hash case-insensitive (true/false)", default: "false" },
  adminTokenFile: { flag: "admin-token-file", kind: "string", describe: "file holding the admin token (preferred: --admin-token shows in the process list)", default: "" },
  allowShortHostname: { flag: "allow-short-hostname", kind: "boolean", describe: "start on port 25 although --hostname is not a fully qualified domain name", default: "false" },
  mtaStsMode: { flag: "mta-sts-mode", kind: "string", describe: "MTA-STS policy mode: testing, enforce, or auto (testing until the MX certificate validates)", default: "auto" },
  acmeDirectory: { flag: "acme-directory", kind: "string", describe: "ACME directory URL (or letsencrypt, letsencrypt-staging) for automatic certificates (off when absent)", default: "" },
  acmeEmail: { flag: "acme-email", kind: "string", describe: "contact address for the ACME account", default: "" },
  workersAiUrl: { flag: "workers-ai-url", kind: "string", describe: "Workers AI endpoint for env.AI.run() (Cloudflare's https://api.cloudflare.com/client/v4/accounts/<id>/ai or one answering its shape; token in MAILROUTE_WORKERS_AI_TOKEN); off: AI bindings are refused", default: "" },
  metricsPort: { flag: "metrics-port", kind: "string", describe: "serve GET /metrics without a token on its own port (off when absent; the main port's /metrics needs the operator token)", default: "" },
  metricsHost: { flag: "metrics-host", kind: "string", describe: "address of the --metrics-port listener (keep it private: the scraper's network only)", default: "127.0.0.1" },
  httpsPort: { flag: "https-port", kind: "string", describe: "HTTPS port for the MTA-STS policy hosts, with ACME certificates (443 in production; off when absent)", default: "" },
  processes: { flag: "processes", kind: "string", describe: "service processes sharing the SMTP and HTTP ports (node:cluster): a number, or auto for one per core", default: "1" },
  signingThreads: { flag: "signing-threads", kind: "string", describe: "worker threads for DKIM signing and ARC sealing (each ~30 MiB): a number, 0 to sign on the SMTP thread (key operations on libuv's thread pool), or auto for one fewer than the cores (1 to 4)", default: "auto" },
  storeWriterThread: { flag: "store-writer-thread", kind: "boolean", describe: "SQLite: write the delivery ledger and the activity events beside the SMTP thread, with a connection of their own on the first signing thread (or on a thread of their own with --signing-threads 0, ~12 MiB); false writes them on the SMTP thread, those of one turn of its event loop committed together", default: "true" },
  releaseIdleMemory: { flag: "release-idle-memory", kind: "boolean", describe: "when the service goes quiet after work that grew its memory by 16 MiB or more, run a full garbage collection and glibc's malloc_trim to give that memory back to the system, and drop the pages of the Node binary not touched since from the resident set, as once quiet after start (at most every 3 s; logged as memory_released)", default: "true" },
  trustedNetworks: { flag: "trusted-networks", kind: "list", describe: "CIDRs of this installation's own clients (not limited; auth failures marked, not refused); \"none\" for none", default: "127.0.0.0/8,::1/128" },
});

export const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class SettingsError extends Error {
  readonly setting: string;
  constructor(setting: string, message: string) {
    super(`--${setting}: ${message}`);
    this.name = "SettingsError";
    this.setting = setting;
  }
}

export function envName(flag: string): string {
  return `MAILROUTE_${flag.toUpperCase().replaceAll("-", "_")}`;
}

export function loadSettings(flags: Readonly<Record<string, string | undefined>>, env: NodeJS.ProcessEnv = process.env): Readonly<Settings> {
  const raw = (key: FlaggedSetting): string => {
    const spec = SETTING_SPECS[key];
    return flags[spec.flag] ?? env[envName(spec.flag)] ?? spec.default;
  };
  const integer = (key: FlaggedSetting, min: number, max: number): number => {
    const text = raw(key).trim();
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) throw new SettingsError(SETTING_SPECS[key].flag, `"${text}" is not a whole number between ${min} and ${max}`);
    return value;
  };
  const hostnameInput = raw("hostname") || machineHostname();
  const hostname = normalizeDomain(hostnameInput);
  if (hostname === null) throw new SettingsError("hostname", `"${hostnameInput}" is not a host name; pass --hostname mx.example.com`);
  const logLevel = raw("logLevel");
  if (!["debug", "info", "warn", "error"].includes(logLevel)) throw new SettingsError("log-level", `"${logLevel}" is not one of debug, info, warn, error`);
  const database = raw("database").trim();
  if (database !== "" && !/^postgres(ql)?:\/\//.test(database)) throw new SettingsError("database", `"${database}" is not a postgres:// URL (leave it unset for SQLite)`);
  const flag = (key: FlaggedSetting): boolean => {
    const text = raw(key).trim().toLowerCase();
    if (["true", "1", "yes", "on"].includes(text)) return true;
    if (["false", "0", "no", "off", ""].includes(text)) return false;
    throw new SettingsError(SETTING_SPECS[key].flag, `"${text}" is not true or false`);
  };
  const path = (key: FlaggedSetting): string | null => (raw(key).trim() === "" ? null : resolve(raw(key).trim()));
  const tlsCert = path("tlsCert");
  const tlsKey = path("tlsKey");
  if ((tlsCert === null) !== (tlsKey === null)) throw new SettingsError(tlsCert === null ? "tls-cert" : "tls-key", "--tls-cert and --tls-key go together");
  const dkimSelector = raw("dkimSelector").trim();
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i.test(dkimSelector)) throw new SettingsError("dkim-selector", `"${dkimSelector}" is not a DNS label`);
  const list = (key: FlaggedSetting): string[] => raw(key).split(",").map((item) => item.trim()).filter(Boolean);
  const adminTokenFile = path("adminTokenFile");
  const mtaStsMode = raw("mtaStsMode").trim().toLowerCase();
  if (!["testing", "enforce", "auto"].includes(mtaStsMode)) throw new SettingsError("mta-sts-mode", `"${mtaStsMode}" is not one of testing, enforce, auto`);
  const acmeInput = raw("acmeDirectory").trim();
  const acmeDirectory = ACME_DIRECTORIES[acmeInput.toLowerCase()] ?? (acmeInput === "" ? null : acmeInput);
  if (acmeDirectory !== null && !/^https?:\/\/[^\s]+$/.test(acmeDirectory)) throw new SettingsError("acme-directory", `"${acmeInput}" is not an http(s) URL, letsencrypt or letsencrypt-staging`);
  const acmeEmail = raw("acmeEmail").trim();
  if (acmeEmail !== "" && !/^[^\s@]+@[^\s@]+$/.test(acmeEmail)) throw new SettingsError("acme-email", `"${acmeEmail}" is not an email address`);
  const httpsPort = raw("httpsPort").trim() === "" ? null : integer("httpsPort", 0, 65535);
  const metricsPort = raw("metricsPort").trim() === "" ? null : integer("metricsPort", 0, 65535);
  const clusterKeyFile = path("clusterKeyFile");
  let clusterKey: ClusterKey | null;
  try {
    clusterKey = loadClusterKey({ file: clusterKeyFile, inline: env[CLUSTER_KEY_ENV]?.trim() || null });
  } catch (error) {
    if (error instanceof ClusterKeyError) throw new SettingsError("cluster-key-file", error.message);
    throw error;
  }
  const workersAiUrl = raw("workersAiUrl").trim();
  if (workersAiUrl !== "" && !/^https?:\/\/[^\s]+$/.test(workersAiUrl)) throw new SettingsError("workers-ai-url", `"${workersAiUrl}" is not an http(s) URL`);
  const nodeId = raw("nodeId").trim();
  if (nodeId !== "" && !NODE_ID.test(nodeId)) throw new SettingsError("node-id", `"${nodeId}" is not a node id: 1 to 64 letters, digits, ".", "_" or "-"`);
  return Object.freeze({
    clusterKeyFile,
    clusterKey,
    workersAiUrl: workersAiUrl === "" ? null : workersAiUrl,
    workersAiToken: env[WORKERS_AI_TOKEN_ENV]?.trim() || null,
    nodeId: nodeId === "" ? null : nodeId,
    adminTokenFile,
    allowShortHostname: flag("allowShortHostname"),
    mtaStsMode: mtaStsMode as MtaStsModeSetting,
    acmeDirectory,
    acmeEmail: acmeEmail === "" ? null : acmeEmail,
    httpsPort,
    metricsPort,
    metricsHost: raw("metricsHost").trim(),
    dnsbl: list("dnsbl").map((zone) => {
      const normalized = normalizeDomain(zone);
      if (normalized === null) throw new SettingsError("dnsbl", `"${zone}" is not a DNS zone`);
      return normalized;
    }),
    tlsCert,
    tlsKey,
    caFile: path("caFile"),
    dkimSelector: dkimSelector.toLowerCase(),
    dkimEd25519: flag("dkimEd25519"),
    maxConnectionsPerIp: integer("maxConnectionsPerIp", 1, 100_000),
    messagesPerMinutePerIp: integer("messagesPerMinutePerIp", 1, 1_000_000),
    maxCommandsBeforeMail: integer("maxCommandsBeforeMail", 1, 10_000),
    proxyProtocol: list("proxyProtocol"),
    workerDeadlineMs: integer("workerDeadlineMs", 100, 300_000),
    workerMemoryMb: integer("workerMemoryMb", 32, 16_384),
    workerFetchAllow: list("workerFetchAllow"),
    publicUrl: publicUrl(raw("publicUrl")),
    trustedNetworks: raw("trustedNetworks").trim() === "none" ? [] : list("trustedNetworks").map((cidr) => {
      if (!/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(cidr)) throw new SettingsError("trusted-networks", `"${cidr}" is not an address or CIDR prefix`);
      return cidr;
    }),
    dataDir: resolve(raw("dataDir")),
    database: database === "" ? null : database,
    smtpPort: integer("smtpPort", 0, 65535),
    smtpHost: raw("smtpHost"),
    httpPort: integer("httpPort", 0, 65535),
    httpHost: raw("httpHost"),
    hostname,
    dnsServers: list("dnsServers"),
    outboundPort: integer("outboundPort", 1, 65535),
    transport: raw("transport").trim(),
    adminToken: adminToken(raw("adminToken") || null, adminTokenFile),
    smtpTimeoutMs: integer("smtpTimeoutMs", 100, 3_600_000),
    relayTimeoutMs: integer("relayTimeoutMs", 100, 540_000),
    maxRecipients: integer("maxRecipients", 1, 10_000),
    maxClients: integer("maxClients", 1, 100_000),
    maxMessageSize: integer("maxMessageSize", 1024, 1024 * 1024 * 1024),
    logLevel: logLevel as Settings["logLevel"],
    smtpTransactionTimeoutMs: integer("smtpTransactionTimeoutMs", 100, 3_600_000),
    smtpMinDataRate: integer("smtpMinDataRate", 1, 1_000_000_000),
    greetPauseMs: integer("greetPauseMs", 0, 10_000),
    queueMinBackoffMs: integer("queueMinBackoffMs", 100, 86_400_000),
    queueMaxBackoffMs: integer("queueMaxBackoffMs", 100, 7 * 86_400_000),
    queueMaxAgeMs: integer("queueMaxAgeMs", 1000, 30 * 86_400_000),
    queuePollMs: integer("queuePollMs", 100, 3_600_000),
    srsPostsrsdCompat: flag("srsPostsrsdCompat"),
    processes: raw("processes").trim().toLowerCase() === "auto" ? availableParallelism() : integer("processes", 1, 64),
    signingThreads: raw("signingThreads").trim().toLowerCase() === "auto" ? null : integer("signingThreads", 0, 16),
    storeWriterThread: flag("storeWriterThread"),
    releaseIdleMemory: flag("releaseIdleMemory"),
  });
}

/**
 * The admin token from `--admin-token` (or MAILROUTE_ADMIN_TOKEN) or from the first line of
 * `--admin-token-file`; never both, so which one counts is never a guess.
 */
function adminToken(given: string | null, file: string | null): string | null {
  if (file === null) return given;
  if (given !== null) throw new SettingsError("admin-token-file", "give --admin-token-file or --admin-token (MAILROUTE_ADMIN_TOKEN), not both");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new SettingsError("admin-token-file", `cannot read "${file}" (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const token = text.split(/\r?\n/)[0]!.trim();
  if (token === "") throw new SettingsError("admin-token-file", `"${file}" is empty: put the token on its first line`);
  return token;
}
