/**
 * What every `mailroute worker …` subcommand shares: the flags and usage text (the command-line
 * contract, kept identical when the command was split), the parsed context, the account's
 * services (opened only on an existing store: a mistyped --data-dir is refused, naming the path,
 * never created), and the output helpers.
 */
import type { ParseArgsConfig } from "node:util";
import type { AccountServices } from "../../core/services.ts";
import type { WorkerSummary } from "../../core/workers/worker-definition.ts";
import { usageError } from "../cli-error.ts";
import { withService } from "../open-configuration.ts";
import { type Output } from "../command-output.ts";

/** What the command reads besides argv; tests pass their own. */
export interface WorkerCommandIo {
  /** Secret and KV values; default process.stdin. */
  stdin?: AsyncIterable<Uint8Array | string> & { isTTY?: boolean };
  /** Ends `worker tail`; SIGINT does too. */
  signal?: AbortSignal;
}

export const USAGE = [
  "mailroute worker deploy <name> [<entry>] [--config wrangler.toml|wrangler.jsonc] [--env E] [--var KEY=VALUE]… [--kv BINDING=namespace]… [--compatibility-date YYYY-MM-DD] [--compatibility-flag F]… [--minify] [--allow-missing-bindings]",
  "       | list | remove <name>",
  "       | secret put <name> <key> (value on stdin) | secret delete <name> <key> | secret list <name>",
  "       | kv put <namespace> <key> [<value>|-] [--ttl S] [--expiration EPOCH] [--metadata JSON] | kv get <namespace> <key> | kv list <namespace> [--prefix P] [--limit N] [--cursor C] | kv delete <namespace> <key>",
  "       | tail <name> [--lines N] [--interval MS] [--once]",
  "       | test <name> --eml message.eml [--from ADDRESS] [--to ADDRESS]   (runs the worker, delivers nothing)",
  "       | d1 execute <database> (--command SQL | --file FILE)   (database: binding, database_name or id)",
  "       | analytics <dataset> [--since ISO-DATE] [--index I] [--limit N]",
].join("\n");

export const OPTIONS = {
  "data-dir": { type: "string" },
  database: { type: "string" },
  json: { type: "boolean", default: false },
  account: { type: "string" },
  config: { type: "string" },
  var: { type: "string", multiple: true },
  kv: { type: "string", multiple: true },
  "compatibility-date": { type: "string" },
  "compatibility-flag": { type: "string", multiple: true },
  minify: { type: "boolean" },
  env: { type: "string" },
  "allow-missing-bindings": { type: "boolean" },
  ttl: { type: "string" },
  expiration: { type: "string" },
  metadata: { type: "string" },
  prefix: { type: "string" },
  limit: { type: "string" },
  cursor: { type: "string" },
  lines: { type: "string" },
  interval: { type: "string" },
  once: { type: "boolean" },
  eml: { type: "string" },
  from: { type: "string" },
  to: { type: "string" },
  command: { type: "string" },
  file: { type: "string" },
  since: { type: "string" },
  index: { type: "string" },
} as const satisfies ParseArgsConfig["options"];

export type Option = keyof typeof OPTIONS;
export const COMMON: Option[] = ["data-dir", "database", "json", "account"];
export const VERB_OPTIONS: Record<string, Option[]> = {
  deploy: ["config", "var", "kv", "compatibility-date", "compatibility-flag", "minify", "env", "allow-missing-bindings"],
  list: [],
  remove: [],
  secret: [],
  kv: ["ttl", "expiration", "metadata", "prefix", "limit", "cursor"],
  tail: ["lines", "interval", "once"],
  test: ["eml", "from", "to"],
  d1: ["command", "file"],
  analytics: ["since", "index", "limit"],
};

export interface Values {
  [key: string]: string | boolean | string[] | undefined;
}

export interface Context {
  values: Values;
  positionals: string[];
  output: Output;
  io: WorkerCommandIo;
  account: string;
}

/**
 * The services of --account on the store named by --data-dir / --database. Like every
 * configuration command, a missing store is refused (open-configuration's withStore), so only
 * `start` and `mailroute init` ever create one.
 */
export function withWorkerServices<T>(context: Context, work: (services: AccountServices) => Promise<T>): Promise<T> {
  // node:util's kebab-case names → the store flags every configuration command reads
  const values = context.values;
  const flags = { dataDir: values["data-dir"] as string | undefined, database: values.database as string | undefined, account: context.account, json: values.json === true };
  return withService(flags, (services) => work(services));
}

export function emit(context: Context, json: unknown, human: string[]): void {
  if (context.values.json) context.output.out(JSON.stringify(json, null, 2));
  else for (const line of human) context.output.out(line);
}

export function need(context: Context, index: number, what: string): string {
  const value = context.positionals[index];
  if (value === undefined || value === "") throw usageError(`missing ${what}`, USAGE);
  return value;
}

export function splitPair(spec: string, flag: string, shape: string): [string, string] {
  const at = spec.indexOf("=");
  if (at <= 0) throw usageError(`${flag} "${spec}" is not ${shape}`, USAGE);
  return [spec.slice(0, at), spec.slice(at + 1)];
}

export function wholeNumber(value: string | boolean | string[] | undefined, flag: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (typeof value !== "string" || !/^\d+$/.test(value) || number < min || number > max) throw usageError(`${flag} "${String(value)}" is not a whole number from ${min} to ${max}`, USAGE);
  return number;
}

export function describeBindings(worker: WorkerSummary): string {
  const { vars, kv: kvs, sendEmail, secrets } = worker.bindings;
  const parts = [
    vars.length > 0 ? `vars ${vars.join(", ")}` : "",
    kvs.length > 0 ? `kv ${kvs.map((k) => `${k.binding}→${k.namespace}`).join(", ")}` : "",
    sendEmail.length > 0 ? `send_email ${sendEmail.join(", ")}` : "",
    secrets.length > 0 ? `secrets ${secrets.join(", ")}` : "",
    ...describePlatform(worker.bindings.platform),
  ].filter(Boolean);
  return parts.length === 0 ? "none" : parts.join("; ");
}

export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join("  ").trimEnd());
}

export function kib(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** The newest date the installed workerd accepts (never after today), as miniflare computes it. */
export async function newestCompatibilityDate(): Promise<string> {
  // Loaded on demand: miniflare is large, and only a deploy needs it.
  const { supportedCompatibilityDate } = await import("miniflare");
  return supportedCompatibilityDate;
}

export function describePlatform(platform: WorkerSummary["bindings"]["platform"]): string[] {
  return [
    platform.d1.length > 0 ? `d1 ${platform.d1.map((b) => `${b.binding}→${b.databaseName ?? b.databaseId}`).join(", ")}` : "",
    platform.r2.length > 0 ? `r2 ${platform.r2.map((b) => `${b.binding}→${b.bucket}`).join(", ")}` : "",
    platform.queues.length > 0 ? `queues ${platform.queues.map((b) => `${b.binding}→${b.queue}`).join(", ")}` : "",
    platform.analytics.length > 0 ? `analytics ${platform.analytics.map((b) => `${b.binding}→${b.dataset}`).join(", ")}` : "",
    platform.ai.length > 0 ? `ai ${platform.ai.map((b) => b.binding).join(", ")}` : "",
    platform.missing.length > 0 ? `missing ${platform.missing.map((b) => `${b.binding} (${b.type})`).join(", ")}` : "",
  ];
}