/**
 * Runtime settings for `mailroute start` (DESIGN §6, the operator contract): each flag has an
 * environment twin MAILROUTE_<NAME>; a flag wins over the environment, which wins over the
 * default. The result is frozen. Errors name the setting and say what a valid value is.
 */
import { hostname as machineHostname } from "node:os";
import { resolve } from "node:path";
import { normalizeDomain } from "../routing/email-address.ts";

export interface Settings {
  dataDir: string;
  database: string | null;
  smtpPort: number;
  smtpHost: string;
  httpPort: number;
  httpHost: string;
  hostname: string;
  dnsServers: string[];
  outboundPort: number;
  transport: string;
  adminToken: string | null;
  /** Idle client timeout on the inbound side, ms (RFC 5321 §4.5.3.2 suggests 5 minutes). */
  smtpTimeoutMs: number;
  /** Bound on the whole in-session relay of one message, ms. */
  relayTimeoutMs: number;
  maxRecipients: number;
  maxClients: number;
  maxMessageSize: number;
  logLevel: "debug" | "info" | "warn" | "error";
}

export interface SettingSpec {
  flag: string;
  kind: "string" | "port" | "integer" | "list";
  describe: string;
  default: string;
}

export const SETTING_SPECS: Readonly<Record<keyof Settings, SettingSpec>> = Object.freeze({
  dataDir: { flag: "data-dir", kind: "string", describe: "SQLite file, keys, secrets", default: "./data" },
  database: { flag: "database", kind: "string", describe: "postgres://… for cluster mode (default: SQLite in the data dir)", default: "" },
  smtpPort: { flag: "smtp-port", kind: "port", describe: "inbound SMTP port (25 in production)", default: "2525" },
  smtpHost: { flag: "smtp-host", kind: "string", describe: "inbound SMTP address (:: in production)", default: "127.0.0.1" },
  httpPort: { flag: "http-port", kind: "port", describe: "API, dashboard, MTA-STS, verify links", default: "8787" },
  httpHost: { flag: "http-host", kind: "string", describe: "HTTP listen address", default: "127.0.0.1" },
  hostname: { flag: "hostname", kind: "string", describe: "EHLO name and SRS domain", default: "" },
  dnsServers: { flag: "dns-servers", kind: "list", describe: "resolvers for MX/A/AAAA/TXT, host:port,…", default: "" },
  outboundPort: { flag: "outbound-port", kind: "port", describe: "port used for MX delivery", default: "25" },
  transport: { flag: "transport", kind: "string", describe: "domain=host:port,… static routes that bypass MX lookup", default: "" },
  adminToken: { flag: "admin-token", kind: "string", describe: "bootstrap API token (generated when absent)", default: "" },
  smtpTimeoutMs: { flag: "smtp-timeout", kind: "integer", describe: "idle inbound client timeout in ms", default: "300000" },
  relayTimeoutMs: { flag: "relay-timeout", kind: "integer", describe: "bound on one in-session relay in ms", default: "240000" },
  maxRecipients: { flag: "max-recipients", kind: "integer", describe: "recipients per message", default: "100" },
  maxClients: { flag: "max-clients", kind: "integer", describe: "concurrent inbound SMTP connections", default: "1000" },
  maxMessageSize: { flag: "max-message-size", kind: "integer", describe: "largest message in bytes (SIZE)", default: String(25 * 1024 * 1024) },
  logLevel: { flag: "log-level", kind: "string", describe: "debug, info, warn or error", default: "info" },
});

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
  const raw = (key: keyof Settings): string => {
    const spec = SETTING_SPECS[key];
    return flags[spec.flag] ?? env[envName(spec.flag)] ?? spec.default;
  };
  const integer = (key: keyof Settings, min: number, max: number): number => {
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
  return Object.freeze({
    dataDir: resolve(raw("dataDir")),
    database: database === "" ? null : database,
    smtpPort: integer("smtpPort", 0, 65535),
    smtpHost: raw("smtpHost"),
    httpPort: integer("httpPort", 0, 65535),
    httpHost: raw("httpHost"),
    hostname,
    dnsServers: raw("dnsServers").split(",").map((s) => s.trim()).filter(Boolean),
    outboundPort: integer("outboundPort", 1, 65535),
    transport: raw("transport").trim(),
    adminToken: raw("adminToken") || null,
    smtpTimeoutMs: integer("smtpTimeoutMs", 100, 3_600_000),
    relayTimeoutMs: integer("relayTimeoutMs", 100, 540_000),
    maxRecipients: integer("maxRecipients", 1, 10_000),
    maxClients: integer("maxClients", 1, 100_000),
    maxMessageSize: integer("maxMessageSize", 1024, 1024 * 1024 * 1024),
    logLevel: logLevel as Settings["logLevel"],
  });
}
