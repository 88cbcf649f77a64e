/**
 * What a deployed Email Worker is, apart from where it is stored: the checks a deployment must
 * pass, the binding-name rules, the version hash, and the shapes the service and the runtime
 * reader turn stored rows into.
 *
 * Promises:
 *  - `version` is the sha256 of the bundle, the bindings and the secrets' ciphertexts: it moves
 *    whenever what the runtime must load moves, and reveals no secret;
 *  - binding names are unique across vars, KV, send_email, platform bindings and secrets
 *    (Cloudflare refuses the same); names starting __MAILROUTE are the runtime's own;
 *  - a summary carries binding and secret names, never a secret value.
 */
import { createHash } from "node:crypto";
import type { WorkerRow, WorkerSummaryRow } from "../../store/repositories/worker-repository.ts";
import { RESERVED_MODULES } from "../../workers/entry-worker.ts";
import { DEFAULT_TRIGGERS, NO_PLATFORM_BINDINGS, platformBindingNames, type PlatformBindings, type WorkerTriggers } from "../../workers/platform-bindings.ts";
import type { WorkerDefinition } from "../../workers/worker-types.ts";
import type { WorkerModule } from "../../workers/worker-upload.ts";
import type { KvBinding, SendEmailBinding } from "../../workers/wrangler-config.ts";
import { ValidationError } from "../validation-error.ts";

/** As rule actions accept them (core/rule-actions.ts); stored lower-case. */
const WORKER_NAME = /^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$/i;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
/** Far above Cloudflare's 10 MB (compressed) script limit: only guards the row size. */
const MAX_BUNDLE_CHARS = 32 * 1024 * 1024;
export const MAX_SECRET_BYTES = 5 * 1024;
export const MAX_LOG_MESSAGE_CHARS = 16 * 1024;
export const DEFAULT_LOG_RETENTION = 1000;

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

/** The stored form of a worker name (lower-case); a ValidationError for a name rules cannot use. */
export function workerName(name: string): string {
  if (!WORKER_NAME.test(name)) throw new ValidationError("name", `"${name}" is not a worker name (letters, digits, - and _, up to 64, starting and ending with a letter or digit)`);
  return name.toLowerCase();
}

export function checkDeployment(deployment: WorkerDeployment): void {
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
export function bindingOwners(bindings: Pick<WorkerDeployment, "vars" | "kv" | "sendEmail" | "platform">): Map<string, string> {
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

export function checkUniqueBindings(deployment: WorkerDeployment, secretNames: string[]): void {
  const owners = bindingOwners(deployment);
  for (const secret of secretNames) {
    const owner = owners.get(secret);
    if (owner !== undefined) throw new ValidationError("bindings", `binding name "${secret}" is already a secret of worker "${deployment.name.toLowerCase()}"; rename ${owner} or delete the secret`, "conflict");
  }
}

/** The definition the runtime runs, from a stored row and its opened secrets. */
export function toDefinition(row: WorkerRow, secrets: Record<string, string>, storageDir: string | null): WorkerDefinition {
  return {
    account: row.account_id,
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
    platform: platformOf(row.platform_bindings),
    triggers: triggersOf(row.triggers),
    ...(storageDir === null ? {} : { storageDir }),
  };
}

export function toSummary(account: string, row: WorkerSummaryRow, secretNames: string[]): WorkerSummary {
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
      secrets: secretNames,
      platform: platformOf(row.platform_bindings),
    },
    triggers: triggersOf(row.triggers),
    bundleSize: Number(row.bundle_size),
    createdAt: row.created_at,
    modifiedAt: row.modified_at,
  };
}

/** Stored platform bindings, with the kinds added since the row was written defaulted. */
export function platformOf(json: string): PlatformBindings {
  return { ...NO_PLATFORM_BINDINGS, ...(JSON.parse(json) as Partial<PlatformBindings>) };
}

export function triggersOf(json: string): WorkerTriggers {
  return { ...DEFAULT_TRIGGERS, ...(JSON.parse(json) as Partial<WorkerTriggers>) };
}

export type VersionedColumns = { bundle: string; compatibility_date: string; compatibility_flags: string; vars: string; kv: string; send_email: string; modules: string; platform_bindings: string; triggers: string };

export function workerVersion(row: VersionedColumns, secrets: { key: string; ciphertext: string }[]): string {
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
export function secretContext(account: string, worker: string, key: string): string {
  return JSON.stringify(["worker-secret", account, worker, key]);
}

export function workerNotFound(name: string): ValidationError {
  return new ValidationError("worker", `no worker named "${name.toLowerCase()}" is deployed`, "not_found");
}
