/**
 * The D1 databases of one account — the ones its deployed workers bind — for an operator or an
 * API token: list them, find one by id, database_name or binding, and run SQL against it
 * (`wrangler d1 execute --remote` through the API), on the same files the runtime's D1 uses.
 *
 * Every execution is audited (`d1.execute`, the database and the size of the SQL; never the SQL
 * itself, which may carry the account's data), as a failure too when the SQL is refused. The
 * SQL runs before the audit entry is written, not inside its transaction: it takes seconds (a
 * wrangler process), and the store must not stay locked for that long.
 *
 * Promises: an account reaches only databases its own workers bind, in its own storage folder;
 * a database no worker binds is not_found; SQL errors come back as a ValidationError ("sql")
 * with D1's explanation.
 */
import { accountStorageDir } from "../../workers/account-storage-dir.ts";
import type { ServiceContext } from "../service-context.ts";
import { ValidationError } from "../validation-error.ts";
import type { WorkerService } from "./worker-service.ts";

export interface D1Database {
  uuid: string;
  name: string;
  /** The binding names and workers that use it. */
  bindings: { worker: string; binding: string }[];
}

export interface D1StatementResult {
  results: Record<string, unknown>[];
  success: boolean;
  meta: Record<string, unknown>;
}

/** Far above a console command; bounds the audit's size field and wrangler's argument. */
const MAX_SQL_BYTES = 100 * 1024;

export class D1Service {
  readonly #ctx: ServiceContext;
  readonly #workers: WorkerService;
  readonly #dataDir: string | null;

  constructor(ctx: ServiceContext, workers: WorkerService, dataDir: string | null) {
    this.#ctx = ctx;
    this.#workers = workers;
    this.#dataDir = dataDir;
  }

  async list(): Promise<D1Database[]> {
    const byId = new Map<string, D1Database>();
    for (const worker of await this.#workers.list()) {
      for (const d1 of worker.bindings.platform.d1) {
        const entry = byId.get(d1.databaseId) ?? { uuid: d1.databaseId, name: d1.databaseName ?? d1.binding, bindings: [] };
        entry.bindings.push({ worker: worker.name, binding: d1.binding });
        byId.set(d1.databaseId, entry);
      }
    }
    return [...byId.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** By id first, then by database_name, then by binding name. */
  async get(ref: string): Promise<D1Database> {
    const all = await this.list();
    const found = all.find((db) => db.uuid === ref) ?? all.find((db) => db.name === ref) ?? all.find((db) => db.bindings.some((b) => b.binding === ref));
    if (found === undefined) throw new ValidationError("database", `no deployed worker of this account binds a D1 database "${ref}"`, "not_found");
    return found;
  }

  async execute(ref: string, sql: string): Promise<D1StatementResult[]> {
    const database = await this.get(ref);
    const bytes = Buffer.byteLength(sql, "utf8");
    const spec = { action: "d1.execute", resourceType: "d1_database", resourceId: database.uuid, routing: false };
    let results: D1StatementResult[] | undefined;
    let refusal: ValidationError | undefined;
    if (sql.trim() === "") refusal = new ValidationError("sql", "is empty");
    else if (bytes > MAX_SQL_BYTES) refusal = new ValidationError("sql", `is ${bytes} bytes; the limit here is ${MAX_SQL_BYTES}`);
    else if (this.#dataDir === null) throw new Error("D1 needs the data directory: createServices(store, { dataDir })");
    else {
      // loaded on demand: it brings wrangler's runner, which only D1 commands need
      const { D1Error, executeD1 } = await import("../../workers/d1-databases.ts");
      try {
        results = await executeD1({ target: { name: database.name, databaseId: database.uuid }, storageDir: accountStorageDir(this.#dataDir, this.#ctx.scope.account), command: sql });
      } catch (error) {
        if (!(error instanceof D1Error)) throw error;
        refusal = new ValidationError("sql", error.message);
      }
    }
    return this.#ctx.change(spec, async () => {
      if (refusal !== undefined) throw refusal;
      return { value: results!, after: { database: database.uuid, sql_bytes: bytes, statements: results!.length } };
    });
  }
}
