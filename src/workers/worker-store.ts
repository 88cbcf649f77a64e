/**
 * Deployed Email Workers in the store: bundle and bindings (`workers`), encrypted secrets
 * (`worker_secrets`) and the recent console output `worker tail` shows (`worker_logs`).
 *
 * Promises:
 *  - a deploy, removal or secret change commits together with a config-version bump, so a
 *    running server notices it on its next poll, as it does routing changes; a redeploy
 *    that changes nothing keeps the version and bumps nothing;
 *  - `version` is the sha256 of the bundle, the bindings and the secrets' ciphertexts: it
 *    moves whenever what the runtime must load moves, and reveals no secret;
 *  - binding names are unique across vars, KV, send_email and secrets (Cloudflare refuses
 *    the same), and secrets survive redeploys and go with the worker when it is removed;
 *  - secrets are stored sealed (secret-box.ts) and decrypted only by `load`;
 *  - logs keep the newest `logRetention` lines per worker (default 1000), each line capped.
 */
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import type { Kysely } from "kysely";
import { ValidationError } from "../core/validation-error.ts";
import { bumpConfigVersion } from "../store/config-version.ts";
import type { Database } from "../store/schema.ts";
import type { SecretBox } from "./secret-box.ts";
import type { KvBinding, SendEmailBinding } from "./wrangler-config.ts";
import type { WorkerDefinition } from "./worker-types.ts";
import { RESERVED_MODULES } from "./entry-worker.ts";
import { DEFAULT_TRIGGERS, NO_PLATFORM_BINDINGS, platformBindingNames, type PlatformBindings, type QueueConsumer, type WorkerTriggers } from "./platform-bindings.ts";
import type { WorkerModule } from "./worker-upload.ts";

/** As rule actions accept them (core/rule-actions.ts); stored lower-case. */
const WORKER_NAME = /^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$/i;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
/** Far above Cloudflare's 10 MB (compressed) script limit: only guards the row size. */
const MAX_BUNDLE_CHARS = 32 * 1024 * 1024;
const MAX_SECRET_BYTES = 5 * 1024;
const MAX_LOG_MESSAGE_CHARS = 16 * 1024;
const DEFAULT_LOG_RETENTION = 1000;

/** What `worker deploy` stores: a definition before its secrets are attached and its version computed. */
export type WorkerDeployment = Omit<WorkerDefinition, "secrets" | "version">;

export interface WorkerSummary {
  account: string;
  name: string;
  version: string;
  compatibilityDate: string;
  compatibilityFlags: string[];
  /** Binding names by kind; secret values never appear here. */
  bindings: { vars: string[]; kv: KvBinding[]; sendEmail: string[]; secrets: string[]; platform: PlatformBindings };
  triggers: WorkerTriggers;
  bundleSize: number;
  createdAt: string;
  modifiedAt: string;
}

export interface DeployResult {
  worker: WorkerSummary;
  previousVersion: string | null;
  /** False when the same bundle and bindings were already deployed. */
  changed: boolean;
}

export interface WorkerLogLine {
  /** A Date or epoch milliseconds (InvocationResult.logs[].at); default now. */
  at?: Date | number;
  /** log | debug | info | warn | error, or system for the host's own lines */
  level: string;
  message: string;
}

export interface WorkerLogEntry {
  id: number;
  worker: string;
  at: string;
  level: string;
  message: string;
}

export interface WorkerStoreOptions {
  now?: () => Date;
  /** Log lines kept per worker. */
  logRetention?: number;
  /** The data directory: loaded definitions get their account's D1/R2 folder under it. */
  dataDir?: string;
}

/** An account's D1 / R2 folder (wrangler's --persist-to layout) under the data directory. */
export function accountStorageDir(dataDir: string, account: string): string {
  // account ids are ours, but a path segment must never climb out of the folder
  return join(resolve(dataDir), "workers", encodeURIComponent(account).replace(/^\.+/, (dots) => "%2E".repeat(dots.length)));
}

export class WorkerStore {
  readonly #db: Kysely<Database>;
  readonly #secrets: SecretBox;
  readonly #now: () => Date;
  readonly #logRetention: number;
  readonly #storageRoot: string | null;

  constructor(db: Kysely<Database>, secrets: SecretBox, options: WorkerStoreOptions = {}) {
    this.#db = db;
    this.#secrets = secrets;
    this.#now = options.now ?? (() => new Date());
    this.#logRetention = options.logRetention ?? DEFAULT_LOG_RETENTION;
    this.#storageRoot = options.dataDir ?? null;
  }

  async deploy(deployment: WorkerDeployment): Promise<DeployResult> {
    const name = workerName(deployment.name);
    checkDeployment(deployment);
    return this.#db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom("workers").select(["version", "created_at"]).where("account_id", "=", deployment.account).where("name", "=", name).executeTakeFirst();
      const secrets = await secretRows(trx, deployment.account, name);
      checkUniqueBindings(deployment, secrets.map((row) => row.key));
      const row = {
        account_id: deployment.account,
        name,
        bundle: deployment.bundle,
        compatibility_date: deployment.compatibilityDate,
        compatibility_flags: JSON.stringify(deployment.compatibilityFlags),
        vars: JSON.stringify(deployment.vars),
        kv: JSON.stringify(deployment.kv),
        send_email: JSON.stringify(deployment.sendEmail),
        modules: JSON.stringify(deployment.modules ?? []),
        platform_bindings: JSON.stringify(deployment.platform ?? NO_PLATFORM_BINDINGS),
        triggers: JSON.stringify(deployment.triggers ?? DEFAULT_TRIGGERS),
      };
      const version = workerVersion(row, secrets);
      const now = this.#now().toISOString();
      if (existing === undefined) {
        await trx.insertInto("workers").values({ ...row, version, created_at: now, modified_at: now }).execute();
      } else if (existing.version !== version) {
        await trx.updateTable("workers").set({ ...row, version, modified_at: now }).where("account_id", "=", deployment.account).where("name", "=", name).execute();
      }
      const changed = existing?.version !== version;
      if (changed) await bumpConfigVersion(trx);
      const worker = await summary(trx, deployment.account, name);
      return { worker: worker!, previousVersion: existing?.version ?? null, changed };
    });
  }

  /** The definition the runtime runs, secrets decrypted; null when no such worker. */
  async load(account: string, name: string): Promise<WorkerDefinition | null> {
    const key = name.toLowerCase();
    const row = await this.#db.selectFrom("workers").selectAll().where("account_id", "=", account).where("name", "=", key).executeTakeFirst();
    if (row === undefined) return null;
    const secrets: Record<string, string> = {};
    for (const secret of await secretRows(this.#db, account, key)) {
      secrets[secret.key] = this.#secrets.open(secret.ciphertext, secretContext(account, key, secret.key));
    }
    return {
      account,
      name: row.name,
      bundle: row.bundle,
      compatibilityDate: row.compatibility_date,
      compatibilityFlags: JSON.parse(row.compatibility_flags) as string[],
      vars: JSON.parse(row.vars) as Record<string, unknown>,
      secrets,
      kv: JSON.parse(row.kv) as KvBinding[],
      sendEmail: JSON.parse(row.send_email) as SendEmailBinding[],
      version: row.version,
      modules: JSON.parse(row.modules) as WorkerModule[],
      platform: { ...NO_PLATFORM_BINDINGS, ...(JSON.parse(row.platform_bindings) as Partial<PlatformBindings>) },
      triggers: { ...DEFAULT_TRIGGERS, ...(JSON.parse(row.triggers) as Partial<WorkerTriggers>) },
      ...(this.#storageRoot === null ? {} : { storageDir: accountStorageDir(this.#storageRoot, account) }),
    };
  }

  async list(account: string): Promise<WorkerSummary[]> {
    const names = await this.#db.selectFrom("workers").select("name").where("account_id", "=", account).orderBy("name").execute();
    const summaries: WorkerSummary[] = [];
    for (const { name } of names) {
      const worker = await summary(this.#db, account, name);
      if (worker !== null) summaries.push(worker);
    }
    return summaries;
  }

  /** Every worker of the account with its triggers: the HTTP side's route table. */
  async fetchRoutes(account: string): Promise<{ name: string; triggers: WorkerTriggers }[]> {
    const rows = await this.#db.selectFrom("workers").select(["name", "triggers"]).where("account_id", "=", account).orderBy("name").execute();
    return rows.map((row) => ({ name: row.name, triggers: { ...DEFAULT_TRIGGERS, ...(JSON.parse(row.triggers) as Partial<WorkerTriggers>) } }));
  }

  /** The worker that consumes `queue` in the account (wrangler's queues.consumers), with its settings. */
  async queueConsumer(account: string, queue: string): Promise<{ definition: WorkerDefinition; consumer: QueueConsumer } | null> {
    const rows = await this.#db.selectFrom("workers").select(["name", "triggers"]).where("account_id", "=", account).orderBy("name").execute();
    for (const row of rows) {
      const triggers = { ...DEFAULT_TRIGGERS, ...(JSON.parse(row.triggers) as Partial<WorkerTriggers>) };
      const consumer = triggers.queueConsumers.find((candidate) => candidate.queue === queue);
      if (consumer === undefined) continue;
      const definition = await this.load(account, row.name);
      if (definition !== null) return { definition, consumer };
    }
    return null;
  }

  /** Name and version of every worker (all accounts when none given): cheap change detection for the runtime. */
  async versions(account?: string): Promise<{ account: string; name: string; version: string }[]> {
    let query = this.#db.selectFrom("workers").select(["account_id", "name", "version"]);
    if (account !== undefined) query = query.where("account_id", "=", account);
    const rows = await query.orderBy("account_id").orderBy("name").execute();
    return rows.map((row) => ({ account: row.account_id, name: row.name, version: row.version }));
  }

  async remove(account: string, name: string): Promise<WorkerSummary> {
    const key = name.toLowerCase();
    return this.#db.transaction().execute(async (trx) => {
      const worker = await summary(trx, account, key);
      if (worker === null) throw notFound(name);
      // Explicit, not only the foreign key's cascade: the rows must go whatever the pragma.
      await trx.deleteFrom("worker_secrets").where("account_id", "=", account).where("worker", "=", key).execute();
      await trx.deleteFrom("workers").where("account_id", "=", account).where("name", "=", key).execute();
      await trx.deleteFrom("worker_logs").where("account_id", "=", account).where("worker", "=", key).execute();
      await bumpConfigVersion(trx);
      return worker;
    });
  }

  /** Creates or replaces a secret; returns the worker's new version. */
  async putSecret(account: string, name: string, secretName: string, value: string): Promise<{ version: string; replaced: boolean }> {
    const key = name.toLowerCase();
    if (secretName === "" || secretName.length > 255) throw new ValidationError("secret", `"${secretName}" is not a secret name (1 to 255 characters)`);
    if (Buffer.byteLength(value, "utf8") > MAX_SECRET_BYTES) throw new ValidationError("secret", `the value of ${secretName} is over ${MAX_SECRET_BYTES / 1024} KiB (Cloudflare's limit)`);
    return this.#db.transaction().execute(async (trx) => {
      const worker = await trx.selectFrom("workers").selectAll().where("account_id", "=", account).where("name", "=", key).executeTakeFirst();
      if (worker === undefined) throw notFound(name);
      const taken = bindingOwners({
        vars: JSON.parse(worker.vars) as Record<string, unknown>,
        kv: JSON.parse(worker.kv) as KvBinding[],
        sendEmail: JSON.parse(worker.send_email) as SendEmailBinding[],
        platform: { ...NO_PLATFORM_BINDINGS, ...(JSON.parse(worker.platform_bindings) as Partial<PlatformBindings>) },
      });
      const owner = taken.get(secretName);
      if (owner !== undefined) throw new ValidationError("secret", `binding name "${secretName}" is already used by ${owner} of worker "${key}"`, "conflict");
      const ciphertext = this.#secrets.seal(value, secretContext(account, key, secretName));
      const now = this.#now().toISOString();
      const before = await trx.selectFrom("worker_secrets").select("key").where("account_id", "=", account).where("worker", "=", key).where("key", "=", secretName).executeTakeFirst();
      await trx
        .insertInto("worker_secrets")
        .values({ account_id: account, worker: key, key: secretName, ciphertext, modified_at: now })
        .onConflict((oc) => oc.columns(["account_id", "worker", "key"]).doUpdateSet({ ciphertext, modified_at: now }))
        .execute();
      const version = await this.#refreshVersion(trx, account, key, now);
      return { version, replaced: before !== undefined };
    });
  }

  async deleteSecret(account: string, name: string, secretName: string): Promise<{ version: string }> {
    const key = name.toLowerCase();
    return this.#db.transaction().execute(async (trx) => {
      const { numDeletedRows } = await trx.deleteFrom("worker_secrets").where("account_id", "=", account).where("worker", "=", key).where("key", "=", secretName).executeTakeFirst();
      if (numDeletedRows === 0n) {
        const exists = await trx.selectFrom("workers").select("name").where("account_id", "=", account).where("name", "=", key).executeTakeFirst();
        throw exists === undefined ? notFound(name) : new ValidationError("secret", `worker "${key}" has no secret "${secretName}"`, "not_found");
      }
      return { version: await this.#refreshVersion(trx, account, key, this.#now().toISOString()) };
    });
  }

  async secretNames(account: string, name: string): Promise<string[]> {
    return (await secretRows(this.#db, account, name.toLowerCase())).map((row) => row.key);
  }

  /** Appends console lines (one transaction) and trims the worker's log to the retention. */
  async appendLogs(account: string, worker: string, lines: readonly WorkerLogLine[]): Promise<void> {
    if (lines.length === 0) return;
    const key = worker.toLowerCase();
    const now = this.#now();
    await this.#db.transaction().execute(async (trx) => {
      await trx
        .insertInto("worker_logs")
        .values(
          lines.map((line) => ({
            account_id: account,
            worker: key,
            at: new Date(line.at ?? now).toISOString(),
            level: line.level,
            message: line.message.length > MAX_LOG_MESSAGE_CHARS ? `${line.message.slice(0, MAX_LOG_MESSAGE_CHARS)}… (truncated)` : line.message,
          })),
        )
        .execute();
      // Everything older than the newest `retention` lines; nothing when there are fewer.
      const oldestKept = await trx
        .selectFrom("worker_logs")
        .select("id")
        .where("account_id", "=", account)
        .where("worker", "=", key)
        .orderBy("id", "desc")
        .offset(this.#logRetention - 1)
        .limit(1)
        .executeTakeFirst();
      if (oldestKept !== undefined) {
        await trx.deleteFrom("worker_logs").where("account_id", "=", account).where("worker", "=", key).where("id", "<", oldestKept.id).execute();
      }
    });
  }

  /**
   * A worker's log lines, oldest first: the newest `limit` (default 100), or with `after`,
   * those with a greater id (what `worker tail` polls for).
   */
  async readLogs(account: string, worker: string, options: { after?: number; limit?: number } = {}): Promise<WorkerLogEntry[]> {
    const key = worker.toLowerCase();
    const limit = options.limit ?? 100;
    const base = this.#db.selectFrom("worker_logs").select(["id", "worker", "at", "level", "message"]).where("account_id", "=", account).where("worker", "=", key);
    const rows =
      options.after === undefined
        ? (await base.orderBy("id", "desc").limit(limit).execute()).reverse()
        : await base.where("id", ">", options.after).orderBy("id").limit(limit).execute();
    return rows.map((row) => ({ ...row, id: Number(row.id) }));
  }

  async #refreshVersion(trx: Kysely<Database>, account: string, name: string, now: string): Promise<string> {
    const worker = await trx.selectFrom("workers").selectAll().where("account_id", "=", account).where("name", "=", name).executeTakeFirstOrThrow();
    const version = workerVersion(worker, await secretRows(trx, account, name));
    await trx.updateTable("workers").set({ version, modified_at: now }).where("account_id", "=", account).where("name", "=", name).execute();
    await bumpConfigVersion(trx);
    return version;
  }
}

/** The stored form of a worker name (lower-case); a ValidationError for a name rules cannot use. */
export function workerName(name: string): string {
  if (!WORKER_NAME.test(name)) throw new ValidationError("name", `"${name}" is not a worker name (letters, digits, - and _, up to 64, starting and ending with a letter or digit)`);
  return name.toLowerCase();
}

function checkDeployment(deployment: WorkerDeployment): void {
  if (deployment.bundle === "") throw new ValidationError("bundle", "is empty");
  if (deployment.bundle.length > MAX_BUNDLE_CHARS) throw new ValidationError("bundle", `is ${(deployment.bundle.length / 1048576).toFixed(1)} MiB; the limit is ${MAX_BUNDLE_CHARS / 1048576} MiB`);
  if (!DATE.test(deployment.compatibilityDate)) throw new ValidationError("compatibility_date", `"${deployment.compatibilityDate}" is not a date "YYYY-MM-DD"`);
  deployment.compatibilityFlags.forEach((flag, index) => {
    if (typeof flag !== "string" || flag === "") throw new ValidationError(`compatibility_flags[${index}]`, "must be a non-empty string");
  });
  deployment.kv.forEach((kv, index) => {
    if (kv.binding === "") throw new ValidationError(`kv[${index}].binding`, "is empty");
    if (kv.namespace === "") throw new ValidationError(`kv[${index}].namespace`, `is empty (binding "${kv.binding}")`);
  });
  deployment.sendEmail.forEach((binding, index) => {
    if (binding.name === "") throw new ValidationError(`send_email[${index}].name`, "is empty");
  });
  const names = new Set<string>();
  (deployment.modules ?? []).forEach((module, index) => {
    if (module.name === "" || module.name.startsWith("/") || module.name.split("/").includes("..")) throw new ValidationError(`modules[${index}].name`, `"${module.name}" is not a module path inside the worker`);
    if (RESERVED_MODULES.includes(module.name)) throw new ValidationError(`modules[${index}].name`, `"${module.name}" is a name mailroute's runtime uses; rename the module`);
    if (names.has(module.name)) throw new ValidationError(`modules[${index}].name`, `"${module.name}" appears twice`);
    names.add(module.name);
  });
}

/** Which binding kind holds each name: vars, KV and send_email share env with secrets. */
function bindingOwners(bindings: Pick<WorkerDeployment, "vars" | "kv" | "sendEmail" | "platform">): Map<string, string> {
  const owners = new Map<string, string>();
  const claim = (name: string, owner: string): void => {
    // the runtime's own bindings (host-protocol.ts): a worker's binding of that name would stand
    // in the entry worker's env beside (or for) the host API
    if (name.toUpperCase().startsWith("__MAILROUTE")) throw new ValidationError("bindings", `binding name "${name}" is reserved for mailroute's runtime; rename ${owner}`);
    const earlier = owners.get(name);
    if (earlier !== undefined) throw new ValidationError("bindings", `binding name "${name}" is used twice: ${earlier} and ${owner}`, "conflict");
    owners.set(name, owner);
  };
  for (const name of Object.keys(bindings.vars)) claim(name, "a var");
  for (const kv of bindings.kv) claim(kv.binding, "a KV namespace");
  for (const binding of bindings.sendEmail) claim(binding.name, "a send_email binding");
  for (const { name, kind } of platformBindingNames(bindings.platform ?? NO_PLATFORM_BINDINGS)) claim(name, kind);
  return owners;
}

function checkUniqueBindings(deployment: WorkerDeployment, secretNames: string[]): void {
  const owners = bindingOwners(deployment);
  for (const secret of secretNames) {
    const owner = owners.get(secret);
    if (owner !== undefined) throw new ValidationError("bindings", `binding name "${secret}" is already a secret of worker "${deployment.name.toLowerCase()}"; rename ${owner} or delete the secret`, "conflict");
  }
}

async function secretRows(db: Kysely<Database>, account: string, worker: string): Promise<{ key: string; ciphertext: string }[]> {
  return db.selectFrom("worker_secrets").select(["key", "ciphertext"]).where("account_id", "=", account).where("worker", "=", worker).orderBy("key").execute();
}

async function summary(db: Kysely<Database>, account: string, name: string): Promise<WorkerSummary | null> {
  const row = await db
    .selectFrom("workers")
    .select((eb) => ["name", "version", "compatibility_date", "compatibility_flags", "vars", "kv", "send_email", "platform_bindings", "triggers", "created_at", "modified_at", eb.fn<number>("length", ["bundle"]).as("bundle_size")])
    .where("account_id", "=", account)
    .where("name", "=", name)
    .executeTakeFirst();
  if (row === undefined) return null;
  return {
    account,
    name: row.name,
    version: row.version,
    compatibilityDate: row.compatibility_date,
    compatibilityFlags: JSON.parse(row.compatibility_flags) as string[],
    bindings: {
      vars: Object.keys(JSON.parse(row.vars) as Record<string, unknown>),
      kv: JSON.parse(row.kv) as KvBinding[],
      sendEmail: (JSON.parse(row.send_email) as SendEmailBinding[]).map((binding) => binding.name),
      secrets: (await secretRows(db, account, name)).map((secret) => secret.key),
      platform: { ...NO_PLATFORM_BINDINGS, ...(JSON.parse(row.platform_bindings) as Partial<PlatformBindings>) },
    },
    triggers: { ...DEFAULT_TRIGGERS, ...(JSON.parse(row.triggers) as Partial<WorkerTriggers>) },
    bundleSize: Number(row.bundle_size),
    createdAt: row.created_at,
    modifiedAt: row.modified_at,
  };
}

type VersionedColumns = { bundle: string; compatibility_date: string; compatibility_flags: string; vars: string; kv: string; send_email: string; modules: string; platform_bindings: string; triggers: string };

function workerVersion(row: VersionedColumns, secrets: { key: string; ciphertext: string }[]): string {
  const hash = createHash("sha256");
  // Length-prefixed parts: no two different definitions hash the same input.
  for (const part of [row.bundle, row.compatibility_date, row.compatibility_flags, canonicalJson(row.vars), row.kv, row.send_email, row.modules, row.platform_bindings, row.triggers, ...secrets.flatMap((s) => [s.key, s.ciphertext])]) {
    hash.update(`${Buffer.byteLength(part, "utf8")}:`).update(part, "utf8");
  }
  return hash.digest("hex");
}

/** Object keys sorted at every level, so `{a, b}` and `{b, a}` give one version. */
function canonicalJson(json: string): string {
  const sort = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sort);
    if (typeof value === "object" && value !== null) return Object.fromEntries(Object.keys(value).sort().map((key) => [key, sort((value as Record<string, unknown>)[key])]));
    return value;
  };
  return JSON.stringify(sort(JSON.parse(json)));
}

/** Binds a ciphertext to its row: copied elsewhere it no longer opens. */
function secretContext(account: string, worker: string, key: string): string {
  return JSON.stringify(["worker-secret", account, worker, key]);
}

function notFound(name: string): ValidationError {
  return new ValidationError("worker", `no worker named "${name.toLowerCase()}" is deployed`, "not_found");
}
