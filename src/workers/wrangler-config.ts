/**
 * Reads a worker's wrangler file — `wrangler.toml`, `wrangler.json` or `wrangler.jsonc` — the
 * way wrangler does, keeping what an Email Worker deploy needs: name, main,
 * compatibility_date, compatibility_flags, [vars], kv_namespaces and send_email, D1 databases
 * with their migrations folder, and the triggers (routes, workers_dev, queue consumers). The
 * bundle and the binding list a deploy stores come from wrangler's own build (worker-bundler.ts);
 * this reader finds `main`, reports mistakes early and reads what a script upload does not carry.
 *
 * Promises: the result is plain JSON data (no TOML dates, no null-prototype objects); `vars`
 * keep their types (strings stay strings, other JSON values as given); every error names the
 * file and the field (`wrangler.toml: kv_namespaces[1].id must be …`), or the line and column
 * of a syntax error. Settings mailroute does not apply (other binding kinds, [env.*],
 * build.command) are reported as warnings, never silently dropped.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parse as parseJsonc, printParseErrorCode, type ParseError } from "jsonc-parser";
import { parse as parseToml, TomlDate, TomlError } from "smol-toml";
import type { WorkerTriggers } from "./platform-bindings.ts";

/** wrangler's own precedence when a folder holds more than one. */
export const WRANGLER_FILE_NAMES = ["wrangler.json", "wrangler.jsonc", "wrangler.toml"] as const;

export interface KvBinding {
  binding: string;
  /** The namespace id: how `worker kv …` and the store name the namespace. */
  namespace: string;
}

export interface SendEmailBinding {
  name: string;
  destinationAddress?: string;
  allowedDestinationAddresses?: string[];
  allowedSenderAddresses?: string[];
}

export interface WranglerConfig {
  /** The file it was read from, as given. */
  path: string;
  name: string | null;
  /** `main`, resolved against the file's folder. */
  main: string | null;
  compatibilityDate: string | null;
  compatibilityFlags: string[];
  vars: Record<string, unknown>;
  kv: KvBinding[];
  sendEmail: SendEmailBinding[];
  /** D1 databases with their migrations folder (resolved), for applying migrations at deploy. */
  d1: D1Database[];
  /** routes / workers_dev / queues.consumers. */
  triggers: WorkerTriggers;
  /** Settings present in the file that mailroute does not apply. */
  warnings: string[];
}

export interface D1Database {
  binding: string;
  databaseName: string | null;
  databaseId: string | null;
  /** Absolute; wrangler's default is `migrations` beside the wrangler file. */
  migrationsDir: string;
}

export class WranglerConfigError extends Error {
  readonly file: string;
  readonly field: string | null;

  constructor(file: string, field: string | null, message: string) {
    super(field === null ? `${file}: ${message}` : `${file}: ${field} ${message}`);
    this.name = "WranglerConfigError";
    this.file = file;
    this.field = field;
  }
}

// D1, R2, queues, Analytics Engine and AI are provided (AI only with an endpoint: the deploy says so)
const UNSUPPORTED_BINDINGS = [
  "durable_objects",
  "services",
  "hyperdrive",
  "vectorize",
  "browser",
  "workflows",
  "dispatch_namespaces",
  "mtls_certificates",
  "assets",
] as const;

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export async function readWranglerConfig(path: string): Promise<WranglerConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new WranglerConfigError(path, null, `cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return parseWranglerConfig(text, path);
}

/** The wrangler file in `directory` or the nearest folder above it; null when there is none. */
export async function findWranglerConfig(directory: string): Promise<string | null> {
  let current = resolve(directory);
  for (;;) {
    for (const name of WRANGLER_FILE_NAMES) {
      const candidate = resolve(current, name);
      if (await isFile(candidate)) return candidate;
    }
    const parent = dirname(current);
    if (parent === current) return null;
    current = parent;
  }
}

/** Parses the text of a wrangler file; the format follows the file name's extension. */
export function parseWranglerConfig(text: string, path: string): WranglerConfig {
  const raw = path.endsWith(".toml") ? parseTomlText(text, path) : parseJsonText(text, path);
  if (!isTable(raw)) throw new WranglerConfigError(path, null, "must contain a table (TOML) or an object (JSON) at the top level");
  const fields = new Fields(path);

  const name = fields.optionalString(raw, "name");
  const main = fields.optionalString(raw, "main");
  const compatibilityDate = fields.date(raw["compatibility_date"], "compatibility_date");
  const compatibilityFlags = fields.stringList(raw["compatibility_flags"], "compatibility_flags") ?? [];
  const vars = fields.vars(raw["vars"]);
  const kv = fields.list(raw["kv_namespaces"], "kv_namespaces", (entry, at) => ({
    binding: fields.requiredString(entry, "binding", at),
    namespace: fields.requiredString(entry, "id", at, "(the KV namespace id; `worker kv` commands name the namespace by it)"),
  }));
  const sendEmail = fields.list(raw["send_email"], "send_email", (entry, at) => fields.sendEmail(entry, at));
  const d1 = fields.list(raw["d1_databases"], "d1_databases", (entry, at) => ({
    binding: fields.requiredString(entry, "binding", at),
    databaseName: fields.optionalString(entry, "database_name", at),
    databaseId: fields.optionalString(entry, "database_id", at),
    migrationsDir: resolve(dirname(path), fields.optionalString(entry, "migrations_dir", at) ?? "migrations"),
  }));
  const triggers = fields.triggers(raw);

  const warnings: string[] = [];
  for (const key of UNSUPPORTED_BINDINGS) {
    if (raw[key] !== undefined) warnings.push(`${path}: ${key} is not supported by mailroute; those bindings will be missing from env`);
  }
  if (raw["env"] !== undefined) warnings.push(`${path}: [env.*] sections apply only with --env <name>; without it the top-level settings are deployed`);
  if (isTable(raw["build"]) && raw["build"]["command"] !== undefined) warnings.push(`${path}: build.command is not run; run it before deploying`);
  if (raw["node_compat"] !== undefined) warnings.push(`${path}: node_compat is obsolete; use compatibility_flags = ["nodejs_compat"]`);

  const config: WranglerConfig = {
    path,
    name,
    main: main === null ? null : resolve(dirname(path), main),
    compatibilityDate,
    compatibilityFlags,
    vars,
    kv,
    sendEmail,
    d1,
    triggers,
    warnings,
  };
  checkUniqueBindings(config, path);
  return config;
}

/** Field readers that name the file and the field in every error. */
class Fields {
  readonly #file: string;

  constructor(file: string) {
    this.#file = file;
  }

  fail(field: string, message: string): never {
    throw new WranglerConfigError(this.#file, field, message);
  }

  optionalString(table: Record<string, unknown>, key: string, at = ""): string | null {
    const value = table[key];
    if (value === undefined) return null;
    if (typeof value !== "string" || value === "") this.fail(`${at}${key}`, `must be a non-empty string, not ${describe(value)}`);
    return value;
  }

  requiredString(table: Record<string, unknown>, key: string, at: string, why = ""): string {
    const value = this.optionalString(table, key, at);
    if (value === null) this.fail(`${at}${key}`, `is required${why === "" ? "" : ` ${why}`}`);
    return value;
  }

  date(value: unknown, field: string): string | null {
    if (value === undefined) return null;
    // An unquoted TOML date (compatibility_date = 2024-09-23) means the same thing.
    const text = value instanceof TomlDate && value.isDate() ? value.toISOString() : value;
    if (typeof text !== "string") this.fail(field, `must be a date string "YYYY-MM-DD", not ${describe(value)}`);
    if (!isCalendarDate(text)) this.fail(field, `"${text}" is not a date "YYYY-MM-DD"`);
    return text;
  }

  stringList(value: unknown, field: string): string[] | null {
    if (value === undefined) return null;
    if (!Array.isArray(value)) this.fail(field, `must be a list of strings, not ${describe(value)}`);
    return value.map((item, index) => {
      if (typeof item !== "string" || item === "") this.fail(`${field}[${index}]`, `must be a non-empty string, not ${describe(item)}`);
      return item;
    });
  }

  addressList(value: unknown, field: string): string[] | null {
    const list = this.stringList(value, field);
    list?.forEach((address, index) => this.address(address, `${field}[${index}]`));
    return list;
  }

  address(value: string, field: string): string {
    if (!/^[^\s@]+@[^\s@]+$/.test(value)) this.fail(field, `"${value}" is not an email address`);
    return value;
  }

  vars(value: unknown): Record<string, unknown> {
    if (value === undefined) return {};
    if (!isTable(value)) this.fail("vars", `must be a table of NAME = value, not ${describe(value)}`);
    const vars: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) vars[key] = plainJson(item);
    return vars;
  }

  list<T>(value: unknown, field: string, read: (entry: Record<string, unknown>, at: string) => T): T[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) this.fail(field, `must be a list of tables ([[${field}]] in TOML), not ${describe(value)}`);
    return value.map((entry, index) => {
      if (!isTable(entry)) this.fail(`${field}[${index}]`, `must be a table, not ${describe(entry)}`);
      return read(entry, `${field}[${index}].`);
    });
  }

  /** wrangler's `route` / `routes`, `workers_dev` and `queues.consumers`, with wrangler's defaults. */
  triggers(raw: Record<string, unknown>): WorkerTriggers {
    const routeList = raw["routes"] ?? (raw["route"] === undefined ? [] : [raw["route"]]);
    if (!Array.isArray(routeList)) this.fail("routes", `must be a list, not ${describe(routeList)}`);
    const routes = routeList.map((route, index) => {
      if (typeof route === "string" && route !== "") return { pattern: route, customDomain: false };
      if (isTable(route) && typeof route["pattern"] === "string" && route["pattern"] !== "") return { pattern: route["pattern"], customDomain: route["custom_domain"] === true };
      return this.fail(`routes[${index}]`, `must be a pattern string or { pattern = "…" }, not ${describe(route)}`);
    });
    const workersDev = raw["workers_dev"];
    if (workersDev !== undefined && typeof workersDev !== "boolean") this.fail("workers_dev", `must be true or false, not ${describe(workersDev)}`);
    const queues = raw["queues"];
    if (queues !== undefined && !isTable(queues)) this.fail("queues", `must be a table with producers / consumers, not ${describe(queues)}`);
    const queueConsumers = this.list(queues?.["consumers"], "queues.consumers", (entry, at) => ({
      queue: this.requiredString(entry, "queue", at),
      maxBatchSize: this.whole(entry["max_batch_size"], `${at}max_batch_size`, 10, 1, 100),
      maxBatchTimeoutSeconds: this.whole(entry["max_batch_timeout"], `${at}max_batch_timeout`, 5, 0, 60),
      maxRetries: this.whole(entry["max_retries"], `${at}max_retries`, 3, 0, 100),
      deadLetterQueue: this.optionalString(entry, "dead_letter_queue", at),
      retryDelaySeconds: this.whole(entry["retry_delay"], `${at}retry_delay`, 0, 0, 43200),
    }));
    // wrangler: workers_dev defaults to on unless the worker has routes
    return { routes, workersDev: workersDev ?? routes.length === 0, queueConsumers };
  }

  whole(value: unknown, field: string, fallback: number, min: number, max: number): number {
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) this.fail(field, `must be a whole number from ${min} to ${max}, not ${describe(value)}`);
    return value;
  }

  sendEmail(entry: Record<string, unknown>, at: string): SendEmailBinding {
    const binding: SendEmailBinding = { name: this.requiredString(entry, "name", at) };
    const destination = this.optionalString(entry, "destination_address", at);
    const allowedDestinations = this.addressList(entry["allowed_destination_addresses"], `${at}allowed_destination_addresses`);
    const allowedSenders = this.addressList(entry["allowed_sender_addresses"], `${at}allowed_sender_addresses`);
    if (destination !== null && allowedDestinations !== null) {
      this.fail(`${at}destination_address`, "and allowed_destination_addresses cannot both be set: a binding has one fixed destination or an allow-list");
    }
    if (destination !== null) binding.destinationAddress = this.address(destination, `${at}destination_address`);
    if (allowedDestinations !== null) binding.allowedDestinationAddresses = allowedDestinations;
    if (allowedSenders !== null) binding.allowedSenderAddresses = allowedSenders;
    return binding;
  }
}

function parseTomlText(text: string, path: string): unknown {
  try {
    return parseToml(text);
  } catch (error) {
    if (error instanceof TomlError) {
      const reason = error.message.replace(/^Invalid TOML document: /, "").split("\n")[0];
      throw new WranglerConfigError(`${path}:${error.line}:${error.column}`, null, `invalid TOML: ${reason}`);
    }
    throw error;
  }
}

function parseJsonText(text: string, path: string): unknown {
  const errors: ParseError[] = [];
  // wrangler reads .json with the same tolerant JSONC parser: comments and trailing commas.
  const value: unknown = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
  const [first] = errors;
  if (first !== undefined) {
    const { line, column } = lineAndColumn(text, first.offset);
    throw new WranglerConfigError(`${path}:${line}:${column}`, null, `invalid JSON: ${printParseErrorCode(first.error)}`);
  }
  return value;
}

function checkUniqueBindings(config: WranglerConfig, path: string): void {
  const seen = new Map<string, string>();
  const claim = (name: string, field: string): void => {
    const earlier = seen.get(name);
    if (earlier !== undefined) throw new WranglerConfigError(path, field, `binding "${name}" is already defined by ${earlier}`);
    seen.set(name, field);
  };
  for (const key of Object.keys(config.vars)) claim(key, `vars.${key}`);
  config.kv.forEach((kv, index) => claim(kv.binding, `kv_namespaces[${index}].binding`));
  config.sendEmail.forEach((binding, index) => claim(binding.name, `send_email[${index}].name`));
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split("\n");
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function isCalendarDate(text: string): boolean {
  const match = DATE.exec(text);
  if (match === null) return false;
  const date = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === text;
}

/** TOML dates become their ISO text, tables plain objects: what the worker sees in env. */
function plainJson(value: unknown): unknown {
  if (value instanceof TomlDate) return value.toISOString();
  if (Array.isArray(value)) return value.map(plainJson);
  if (isTable(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plainJson(item)]));
  return value;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (value instanceof Date) return "a date";
  if (typeof value === "object") return "a table";
  return `${typeof value} ${JSON.stringify(value)}`;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
