/**
 * What every `mailroute worker …` subcommand shares: the flags and usage text (the command-line
 * contract, kept identical when the command was split), the parsed context, the account's
 * services (opened only on an existing store: a mistyped --data-dir is refused, naming the path,
 * never created), and the output helpers.
 */
import type { AccountServices } from "../../core/services.ts";
import type { WorkerSummary } from "../../core/workers/worker-definition.ts";
import { usageError } from "../cli-error.ts";
import { withService } from "../open-configuration.ts";
import { type Output } from "../command-output.ts";
import type { FamilySpec } from "../command-spec.ts";

/** What the command reads besides argv; tests pass their own. */
export interface WorkerCommandIo {
  /** Secret and KV values; default process.stdin. */
  stdin?: AsyncIterable<Uint8Array | string> & { isTTY?: boolean };
  /** Ends `worker tail`; SIGINT does too. */
  signal?: AbortSignal;
}

/** The worker family: read by commander for `--help` and for parsing alike (command-spec.ts). */
export const WORKER_SPEC: FamilySpec = {
  name: "worker",
  summary: "Email Workers (Cloudflare-compatible scripts)",
  subcommands: [
    {
      name: "deploy",
      args: "<name> [entry]",
      summary: "bundle and deploy a worker (see wrangler.toml / wrangler.jsonc)",
      options: [
        ["--config <file>", "wrangler config (wrangler.toml, wrangler.json or wrangler.jsonc)"],
        ["--env <name>", "a wrangler [env.<name>] section"],
        ["--var <KEY=VALUE>", "a plain-text binding", { repeatable: true }],
        ["--kv <BINDING=namespace>", "a KV binding", { repeatable: true }],
        ["--compatibility-date <date>", "workerd compatibility date (YYYY-MM-DD)"],
        ["--compatibility-flag <flag>", "a workerd compatibility flag", { repeatable: true }],
        ["--minify", "minify the bundle"],
        ["--allow-missing-bindings", "deploy although a declared binding cannot be provided here"],
      ],
      example: "mailroute worker deploy triage src/worker.js",
      store: true,
    },
    { name: "list", summary: "list deployed workers", example: "mailroute worker list", store: true },
    { name: "remove", args: "<name>", summary: "remove a worker", example: "mailroute worker remove triage", store: true },
    // [value] is there to be refused with the reason: a secret on the command line stays in shell history
    { name: "secret", args: "<put|delete|list> <worker> [key] [value]", summary: "a worker's secrets (value read from stdin)", example: "echo s3cret | mailroute worker secret put triage API_KEY", store: true },
    {
      name: "kv",
      args: "<put|get|list|delete> <namespace> [key] [value]",
      summary: "KV namespaces (a put's value from the command line, or - for stdin)",
      options: [["--ttl <seconds>", "put: expire after this many seconds"], ["--expiration <epoch>", "put: expire at this time"], ["--metadata <json>", "put: metadata"], ["--prefix <prefix>", "list: keys starting with this"], ["--limit <n>", "list: at most this many"], ["--cursor <cursor>", "list: continue from here"]],
      example: "mailroute worker kv list allowlist",
      store: true,
    },
    { name: "tail", args: "<name>", summary: "follow a worker's log", options: [["--lines <n>", "recent lines first"], ["--interval <ms>", "how often to look"], ["--once", "print and exit"]], example: "mailroute worker tail triage --once", store: true },
    { name: "test", args: "<name>", summary: "run a worker on a message and print what it did (delivers nothing)", options: [["--eml <file>", "the message (RFC 5322)"], ["--from <address>", "envelope sender"], ["--to <address>", "envelope recipient"]], example: "mailroute worker test triage --eml message.eml", store: true },
    { name: "d1", args: "<execute> <database>", summary: "run SQL against a worker's D1 database (binding, database_name or id)", options: [["--command <sql>", "the SQL"], ["--file <file>", "a file of SQL statements"]], example: "mailroute worker d1 execute DB --command 'SELECT 1'", store: true },
    { name: "analytics", args: "<dataset>", summary: "Analytics Engine data points, newest first", options: [["--since <date>", "from this ISO date"], ["--index <index>", "only this index"], ["--limit <n>", "at most this many"]], example: "mailroute worker analytics mail_stats", store: true },
  ],
};

/** Every subcommand's usage line, from the spec (so it cannot drift from what is parsed). */
export const USAGE = WORKER_SPEC.subcommands.map((leaf, index) => `${index === 0 ? "mailroute worker" : "               "} ${leaf.name}${leaf.args === undefined ? "" : ` ${leaf.args}`} [options]`).join("\n");

/** The flag names the subcommand modules read their values by. */
export const FLAG_NAMES: readonly string[] = [
  "data-dir", "database", "json", "account",
  ...new Set(WORKER_SPEC.subcommands.flatMap((leaf) => (leaf.options ?? []).map(([flags]) => /--([a-z0-9-]+)/.exec(flags)![1]!))),
];

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