/**
 * Opens mailroute's store: SQLite in the data directory by default, PostgreSQL when a
 * postgres:// URL is given (cluster mode). Either way the schema is migrated to the latest
 * version and the default account exists before the Store is returned.
 *
 * Promises: a returned Store is ready to use; on any failure nothing is left open and the
 * Error names what failed (the migration, or the database URL).
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { Kysely, PostgresDialect, type Dialect } from "kysely";
import { ensureDataDir, ensurePrivateFile, octal, PRIVATE_FILE_MODE, tightenIfPresent, type OnTightened } from "../config/data-dir.ts";
import { migrateToLatest } from "./migrations.ts";
import { createNodeSqliteDialect } from "./node-sqlite-dialect.ts";
import type { Database } from "./schema.ts";
import type { Store, StoreDialect } from "./store.ts";

export type { Store, StoreDialect } from "./store.ts";

export const SQLITE_FILE_NAME = "mailroute.sqlite";
export const DEFAULT_ACCOUNT_ID = "default";

export interface OpenStoreOptions {
  dataDir: string;
  /** `postgres://…` or `postgresql://…`; absent or empty means SQLite in `dataDir`. */
  databaseUrl?: string;
  /**
   * Errors from idle pooled PostgreSQL connections (e.g. the server restarted). pg emits
   * them on the pool, where an unheard 'error' event would crash the process; the pool
   * already discards the broken connection. Default: one JSON line on stderr.
   */
  onPoolError?: (error: Error) => void;
  /** A data directory or database file others could read was made private. Default: one JSON line on stderr. */
  onPermissionsTightened?: OnTightened;
  /**
   * Whether a missing SQLite store may be created (default true, for `start` and `init`).
   * false: a missing database file is a StoreMissingError naming the path, and nothing is
   * created, so a mistyped --data-dir never answers success against a new empty store.
   */
  create?: boolean;
}

/** The SQLite store asked for does not exist (and `create: false` forbade making it). */
export class StoreMissingError extends Error {
  readonly path: string;

  constructor(path: string) {
    super(`no mailroute store at "${path}"`);
    this.name = "StoreMissingError";
    this.path = path;
  }
}

export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const { dialect, kyselyDialect, target, file } = await chooseDialect(options);
  const db = new Kysely<Database>({ dialect: kyselyDialect });
  try {
    await migrateToLatest(db, dialect);
    await ensureDefaultAccount(db);
  } catch (error) {
    await db.destroy();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`store ${target}: ${reason}`, { cause: error });
  }
  return Object.freeze({
    db,
    dialect,
    ...(file === undefined ? {} : { sqliteFile: file }),
    async close(): Promise<void> {
      await db.destroy();
    },
  });
}

interface ChosenDialect {
  dialect: StoreDialect;
  kyselyDialect: Dialect;
  /** The database as error messages name it: a file path, or a URL without its password. */
  target: string;
  /** SQLite: the database file. */
  file?: string;
}

async function chooseDialect(options: OpenStoreOptions): Promise<ChosenDialect> {
  const url = options.databaseUrl ?? "";
  if (url === "") {
    // private before SQLite creates anything: it gives -wal and -shm the database file's mode
    const onTightened = options.onPermissionsTightened ?? logTightened;
    if (options.create === false && !existsSync(join(options.dataDir, SQLITE_FILE_NAME))) throw new StoreMissingError(resolve(options.dataDir, SQLITE_FILE_NAME));
    ensureDataDir(options.dataDir, onTightened);
    const path = join(options.dataDir, SQLITE_FILE_NAME);
    ensurePrivateFile(path, onTightened);
    for (const suffix of ["-wal", "-shm"]) tightenIfPresent(`${path}${suffix}`, PRIVATE_FILE_MODE, onTightened);
    return { dialect: "sqlite", kyselyDialect: createNodeSqliteDialect(path), target: `"${path}"`, file: path };
  }
  if (!/^postgres(ql)?:\/\//i.test(url)) {
    // Name the scheme only: the URL may carry a password.
    throw new Error(`database "${url.split(":")[0]}:…": only postgres:// or postgresql:// URLs are supported`);
  }
  // pg only for a PostgreSQL store: a SQLite node never pays for it (issue 11, RSS)
  const { default: pg } = await import("pg");
  const pool = new pg.Pool({ connectionString: url });
  const onPoolError = options.onPoolError ?? logPoolError;
  pool.on("error", onPoolError);
  // pg-pool listens for 'error' only on idle clients: one lost while checked out between two
  // statements (inside a transaction) would emit it unheard and end the process. Heard here; the
  // work on that client still fails, through the statement that uses it next.
  pool.on("connect", (client) => client.on("error", () => undefined));
  return { dialect: "postgres", kyselyDialect: new PostgresDialect({ pool }), target: `"${withoutPassword(url)}"` };
}

function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ":***@");
  }
}

function logTightened(path: string, fromMode: number, toMode: number): void {
  process.stderr.write(`${JSON.stringify({ event: "data_permissions_tightened", path, from: octal(fromMode), to: octal(toMode) })}\n`);
}

function logPoolError(error: Error): void {
  process.stderr.write(`${JSON.stringify({ event: "store.pool-error", error: error.message })}\n`);
}

async function ensureDefaultAccount(db: Kysely<Database>): Promise<void> {
  await db
    .insertInto("accounts")
    .values({ id: DEFAULT_ACCOUNT_ID, name: "default", created_at: new Date().toISOString() })
    // Every open does this, and a CLI and the server may open at once.
    .onConflict((oc) => oc.column("id").doNothing())
    .execute();
}
