/**
 * The running side's narrow view of deployed workers: load a definition (secrets opened) for an
 * invocation, the version list the runtime polls for changes, the fetch() route table, a
 * queue's consumer, and appending console lines for `worker tail`.
 *
 * Why not the account services: these calls sit on the mail and HTTP hot paths, run for
 * mailroute itself rather than for an actor, and change no configuration (console lines are the
 * worker's output) — going through `ctx.change()` would audit every message. Everything that
 * changes what is deployed goes through WorkerService instead.
 *
 * Promises: secrets are opened only by `load` (and `queueConsumer`, which loads); console lines
 * are capped in length and the newest `logRetention` (default 1000) are kept per worker.
 */
import type { Kysely } from "kysely";
import { appendWorkerLogs } from "../../store/repositories/worker-log-repository.ts";
import { listSecrets } from "../../store/repositories/worker-secret-repository.ts";
import { findWorker, listWorkerTriggers, listWorkerVersions } from "../../store/repositories/worker-repository.ts";
import type { Database } from "../../store/schema.ts";
import { accountStorageDir } from "../../workers/account-storage-dir.ts";
import type { QueueConsumer, WorkerTriggers } from "../../workers/platform-bindings.ts";
import type { SecretBox } from "../../workers/secret-box.ts";
import type { WorkerDefinition } from "../../workers/worker-types.ts";
import { DEFAULT_LOG_RETENTION, MAX_LOG_MESSAGE_CHARS, secretContext, toDefinition, triggersOf } from "./worker-definition.ts";

export interface WorkerLogLine {
  /** A Date or epoch milliseconds (InvocationResult.logs[].at); default now. */
  at?: Date | number;
  /** log | debug | info | warn | error, or system for the host's own lines */
  level: string;
  message: string;
}

export interface RuntimeWorkersOptions {
  now?: () => Date;
  /** Log lines kept per worker. */
  logRetention?: number;
  /** The data directory: loaded definitions get their account's D1/R2 folder under it. */
  dataDir?: string;
}

export class RuntimeWorkers {
  readonly #db: Kysely<Database>;
  readonly #secrets: SecretBox;
  readonly #now: () => Date;
  readonly #logRetention: number;
  readonly #dataDir: string | null;

  constructor(db: Kysely<Database>, secrets: SecretBox, options: RuntimeWorkersOptions = {}) {
    this.#db = db;
    this.#secrets = secrets;
    this.#now = options.now ?? (() => new Date());
    this.#logRetention = options.logRetention ?? DEFAULT_LOG_RETENTION;
    this.#dataDir = options.dataDir ?? null;
  }

  /** The definition the runtime runs, secrets decrypted; null when no such worker. */
  async load(account: string, name: string): Promise<WorkerDefinition | null> {
    const key = name.toLowerCase();
    const row = await findWorker(this.#db, account, key);
    if (row === undefined) return null;
    const secrets: Record<string, string> = {};
    for (const secret of await listSecrets(this.#db, account, key)) {
      secrets[secret.key] = this.#secrets.open(secret.ciphertext, secretContext(account, key, secret.key));
    }
    return toDefinition(row, secrets, this.#dataDir === null ? null : accountStorageDir(this.#dataDir, account));
  }

  /** Name and version of every worker (all accounts when none given): cheap change detection. */
  async versions(account?: string): Promise<{ account: string; name: string; version: string }[]> {
    return (await listWorkerVersions(this.#db, account)).map((row) => ({ account: row.account_id, name: row.name, version: row.version }));
  }

  /** Every worker of the account with its triggers: the HTTP side's route table. */
  async fetchRoutes(account: string): Promise<{ name: string; triggers: WorkerTriggers }[]> {
    return (await listWorkerTriggers(this.#db, account)).map((row) => ({ name: row.name, triggers: triggersOf(row.triggers) }));
  }

  /** The worker that consumes `queue` in the account (wrangler's queues.consumers), with its settings. */
  async queueConsumer(account: string, queue: string): Promise<{ definition: WorkerDefinition; consumer: QueueConsumer } | null> {
    for (const row of await listWorkerTriggers(this.#db, account)) {
      const consumer = triggersOf(row.triggers).queueConsumers.find((candidate) => candidate.queue === queue);
      if (consumer === undefined) continue;
      const definition = await this.load(account, row.name);
      if (definition !== null) return { definition, consumer };
    }
    return null;
  }

  /** Appends console lines (one transaction) and trims the worker's log to the retention. */
  async appendLogs(account: string, worker: string, lines: readonly WorkerLogLine[]): Promise<void> {
    if (lines.length === 0) return;
    const now = this.#now();
    await appendWorkerLogs(
      this.#db,
      account,
      worker.toLowerCase(),
      lines.map((line) => ({
        at: new Date(line.at ?? now).toISOString(),
        level: line.level,
        message: line.message.length > MAX_LOG_MESSAGE_CHARS ? `${line.message.slice(0, MAX_LOG_MESSAGE_CHARS)}… (truncated)` : line.message,
      })),
      this.#logRetention,
    );
  }
}
