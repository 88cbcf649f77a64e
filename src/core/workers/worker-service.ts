/**
 * Email Workers of one account: deploy, list, get and remove a worker, put and delete its
 * secrets, read its console lines (`worker tail`). Every change goes through `ctx.change()`:
 * validated, audited (actor, action, resource) and, because rules run what is deployed, it
 * bumps the configuration version so running servers pick it up on their next poll.
 *
 * Promises:
 *  - a redeploy that changes nothing keeps the version, bumps nothing, and is still audited;
 *  - secrets are sealed before they are stored (secret-box.ts); a value is never returned,
 *    logged or audited: the audit entry names the worker and the secret only;
 *  - secrets survive redeploys and go with the worker when it is removed (and its logs too);
 *  - another account's worker is "not found" here: every query is scoped to the account.
 */
import type { Kysely } from "kysely";
import * as workers from "../../store/repositories/worker-repository.ts";
import * as secrets from "../../store/repositories/worker-secret-repository.ts";
import { deleteWorkerLogs, readWorkerLogs, type WorkerLogRow } from "../../store/repositories/worker-log-repository.ts";
import type { Database } from "../../store/schema.ts";
import { NO_PLATFORM_BINDINGS, DEFAULT_TRIGGERS, type WorkerTriggers } from "../../workers/platform-bindings.ts";
import type { SecretBox } from "../../workers/secret-box.ts";
import type { WorkerDefinition } from "../../workers/worker-types.ts";
import type { ServiceContext } from "../service-context.ts";
import { ValidationError } from "../validation-error.ts";
import type { RuntimeWorkers } from "./runtime-workers.ts";
import { readDataPoints, type StoredDataPoint } from "./worker-analytics.ts";
import { prepareUpload } from "./upload-deployment.ts";
import { bindingOwners, checkDeployment, checkUniqueBindings, MAX_SECRET_BYTES, platformOf, secretContext, toSummary, triggersOf, workerName, workerNotFound, workerVersion, type DeployResult, type WorkerDeployment, type WorkerSummary } from "./worker-definition.ts";

export type WorkerLogEntry = WorkerLogRow;

export class WorkerService {
  readonly #ctx: ServiceContext;
  readonly #box: SecretBox | null;
  readonly #runtime: RuntimeWorkers;

  readonly #aiEndpoint: boolean;

  constructor(ctx: ServiceContext, box: SecretBox | null, runtime: RuntimeWorkers, options: { aiEndpoint?: boolean } = {}) {
    this.#ctx = ctx;
    this.#box = box;
    this.#runtime = runtime;
    this.#aiEndpoint = options.aiEndpoint === true;
  }

  get #account(): string {
    return this.#ctx.scope.account;
  }

  async deploy(input: Omit<WorkerDeployment, "account"> & { account?: string }): Promise<DeployResult> {
    const deployment: WorkerDeployment = { ...input, account: this.#account };
    const name = workerName(deployment.name);
    return this.#ctx.change({ action: "worker.deploy", resourceType: "worker", resourceId: name }, async (trx) => {
      checkDeployment(deployment);
      const existing = await workers.findWorker(trx, this.#account, name);
      const sealed = await secrets.listSecrets(trx, this.#account, name);
      checkUniqueBindings(deployment, sealed.map((row) => row.key));
      const row = {
        account_id: this.#account,
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
      const version = workerVersion(row, sealed);
      const now = this.#ctx.timestamp();
      if (existing === undefined) await workers.insertWorker(trx, { ...row, version, created_at: now, modified_at: now });
      else if (existing.version !== version) await workers.updateWorker(trx, this.#account, name, { ...row, version, modified_at: now });
      const changed = existing?.version !== version;
      const worker = (await this.#summary(trx, name))!;
      return {
        value: { worker, previousVersion: existing?.version ?? null, changed },
        routing: changed,
        before: existing === undefined ? undefined : { version: existing.version },
        after: { version, changed, bindings: worker.bindings },
      };
    });
  }

  /**
   * Deploys a Workers script upload (the multipart form wrangler sends): parsed, its bindings
   * sorted, proven to load in workerd, then deployed as `deploy()` does, keeping the worker's
   * triggers (an upload carries none). secret_text bindings in the upload are stored sealed.
   * An UploadRefusal (nothing changed) when it cannot be deployed.
   */
  async deployUpload(name: string, body: Uint8Array, contentType: string | undefined): Promise<DeployResult & { handlers: string[] }> {
    const key = workerName(name);
    const existing = await this.#summary(this.#ctx.db, key);
    const prepared = await prepareUpload(this.#account, key, body, contentType, {
      aiEndpoint: this.#aiEndpoint,
      ...(existing === null ? {} : { existing, existingVars: async () => JSON.parse((await workers.findWorker(this.#ctx.db, this.#account, key))?.vars ?? "{}") as Record<string, unknown> }),
    });
    const result = await this.deploy(prepared.deployment);
    for (const [secretName, value] of Object.entries(prepared.secrets)) await this.putSecret(key, secretName, value);
    const worker = Object.keys(prepared.secrets).length === 0 ? result.worker : await this.get(key);
    return { ...result, worker, handlers: prepared.handlers };
  }

  async list(): Promise<WorkerSummary[]> {
    const summaries: WorkerSummary[] = [];
    for (const name of await workers.listWorkerNames(this.#ctx.db, this.#account)) {
      const worker = await this.#summary(this.#ctx.db, name);
      if (worker !== null) summaries.push(worker);
    }
    return summaries;
  }

  /** A deployed worker's summary; a not_found ValidationError when there is none. */
  async get(name: string): Promise<WorkerSummary> {
    const worker = await this.#summary(this.#ctx.db, name.toLowerCase());
    if (worker === null) throw workerNotFound(name);
    return worker;
  }

  /** Lower-case names of the account's deployed workers (rules naming another are refused). */
  async deployedNames(): Promise<ReadonlySet<string>> {
    return new Set(await workers.listWorkerNames(this.#ctx.db, this.#account));
  }

  /** The definition the runtime would run (secrets opened), for a dry run; not_found when none. */
  async definition(name: string): Promise<WorkerDefinition> {
    const definition = await this.#runtime.load(this.#account, name);
    if (definition === null) throw workerNotFound(name);
    return definition;
  }

  async remove(name: string): Promise<WorkerSummary> {
    const key = name.toLowerCase();
    return this.#ctx.change({ action: "worker.delete", resourceType: "worker", resourceId: key }, async (trx) => {
      const worker = await this.#summary(trx, key);
      if (worker === null) throw workerNotFound(name);
      // Explicit, not only the foreign key's cascade: the rows must go whatever the pragma.
      await secrets.deleteWorkerSecrets(trx, this.#account, key);
      await workers.deleteWorker(trx, this.#account, key);
      await deleteWorkerLogs(trx, this.#account, key);
      return { value: worker, before: { version: worker.version, bindings: worker.bindings } };
    });
  }

  /**
   * Sets what reaches the worker's fetch() over HTTP — its `routes` (host/path patterns) and,
   * when given, whether `/workers/<name>/…` serves it (workers_dev) — as `wrangler deploy`'s
   * triggers step asks; the rest of the worker is unchanged. Audited; bumps the version.
   */
  async setFetchTriggers(name: string, change: { routes?: WorkerTriggers["routes"]; workersDev?: boolean }): Promise<WorkerSummary> {
    const key = name.toLowerCase();
    return this.#ctx.change({ action: "worker.triggers", resourceType: "worker", resourceId: key }, async (trx) => {
      const worker = await workers.findWorker(trx, this.#account, key);
      if (worker === undefined) throw workerNotFound(name);
      (change.routes ?? []).forEach((route, index) => {
        if (typeof route.pattern !== "string" || route.pattern === "" || route.pattern.length > 1024) throw new ValidationError(`routes[${index}].pattern`, "must be a host/path pattern such as hooks.example.com/bot*");
      });
      const before = triggersOf(worker.triggers);
      const after: WorkerTriggers = { ...before, ...(change.routes === undefined ? {} : { routes: change.routes }), ...(change.workersDev === undefined ? {} : { workersDev: change.workersDev }) };
      const now = this.#ctx.timestamp();
      await workers.updateWorker(trx, this.#account, key, { triggers: JSON.stringify(after), modified_at: now });
      await this.#refreshVersion(trx, key, now);
      return { value: (await this.#summary(trx, key))!, before: { routes: before.routes, workers_dev: before.workersDev }, after: { routes: after.routes, workers_dev: after.workersDev } };
    });
  }

  /** Creates or replaces a secret; returns the worker's new version. */
  async putSecret(name: string, secretName: string, value: string): Promise<{ version: string; replaced: boolean }> {
    const key = name.toLowerCase();
    return this.#ctx.change({ action: "worker.secret.put", resourceType: "worker_secret", resourceId: `${key}/${secretName}` }, async (trx) => {
      if (secretName === "" || secretName.length > 255) throw new ValidationError("secret", `"${secretName}" is not a secret name (1 to 255 characters)`);
      if (Buffer.byteLength(value, "utf8") > MAX_SECRET_BYTES) throw new ValidationError("secret", `the value of ${secretName} is over ${MAX_SECRET_BYTES / 1024} KiB (Cloudflare's limit)`);
      const worker = await workers.findWorker(trx, this.#account, key);
      if (worker === undefined) throw workerNotFound(name);
      const owner = bindingOwners({ vars: JSON.parse(worker.vars) as Record<string, unknown>, kv: JSON.parse(worker.kv), sendEmail: JSON.parse(worker.send_email), platform: platformOf(worker.platform_bindings) }).get(secretName);
      if (owner !== undefined) throw new ValidationError("secret", `binding name "${secretName}" is already used by ${owner} of worker "${key}"`, "conflict");
      const ciphertext = this.#sealer().seal(value, secretContext(this.#account, key, secretName));
      const replaced = await secrets.secretExists(trx, this.#account, key, secretName);
      const now = this.#ctx.timestamp();
      await secrets.upsertSecret(trx, { account_id: this.#account, worker: key, key: secretName, ciphertext, modified_at: now });
      const version = await this.#refreshVersion(trx, key, now);
      // names only: the value (and its ciphertext) never reach the audit log
      return { value: { version, replaced }, after: { worker: key, secret: secretName, replaced } };
    });
  }

  async deleteSecret(name: string, secretName: string): Promise<{ version: string }> {
    const key = name.toLowerCase();
    return this.#ctx.change({ action: "worker.secret.delete", resourceType: "worker_secret", resourceId: `${key}/${secretName}` }, async (trx) => {
      if (!(await secrets.deleteSecret(trx, this.#account, key, secretName))) {
        const exists = await workers.findWorker(trx, this.#account, key);
        throw exists === undefined ? workerNotFound(name) : new ValidationError("secret", `worker "${key}" has no secret "${secretName}"`, "not_found");
      }
      const version = await this.#refreshVersion(trx, key, this.#ctx.timestamp());
      return { value: { version }, before: { worker: key, secret: secretName } };
    });
  }

  async secretNames(name: string): Promise<string[]> {
    return (await secrets.listSecrets(this.#ctx.db, this.#account, name.toLowerCase())).map((row) => row.key);
  }

  /**
   * A worker's console lines, oldest first: the newest `limit` (default 100), or with `after`,
   * those with a greater id (what `worker tail` polls for).
   */
  logs(name: string, options: { after?: number; limit?: number } = {}): Promise<WorkerLogEntry[]> {
    return readWorkerLogs(this.#ctx.db, this.#account, name.toLowerCase(), { after: options.after, limit: options.limit ?? 100 });
  }

  /** Analytics Engine points the account's workers wrote to `dataset`, newest first. */
  dataPoints(dataset: string, options: { since?: Date; index?: string; limit?: number } = {}): Promise<StoredDataPoint[]> {
    return readDataPoints(this.#ctx.db, this.#account, dataset, options);
  }

  #sealer(): SecretBox {
    // a service built without the data directory's key cannot seal: say so, never store plain text
    if (this.#box === null) throw new Error("worker secrets need the secret key: createServices(store, { secretBox })");
    return this.#box;
  }

  async #summary(db: Kysely<Database>, name: string): Promise<WorkerSummary | null> {
    const row = await workers.findWorkerSummary(db, this.#account, name);
    if (row === undefined) return null;
    return toSummary(this.#account, row, (await secrets.listSecrets(db, this.#account, name)).map((secret) => secret.key));
  }

  async #refreshVersion(trx: Kysely<Database>, name: string, now: string): Promise<string> {
    const worker = await workers.findWorker(trx, this.#account, name);
    if (worker === undefined) throw workerNotFound(name);
    const version = workerVersion(worker, await secrets.listSecrets(trx, this.#account, name));
    await workers.updateWorker(trx, this.#account, name, { version, modified_at: now });
    return version;
  }
}
