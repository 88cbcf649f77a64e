/**
 * Kysely's built-in SqliteDialect running on Node's own `node:sqlite` (no native addon
 * to compile against the machine's Node). Kysely expects better-sqlite3's shape; this
 * file adapts `DatabaseSync` to it and sets the pragmas every mailroute connection needs.
 *
 * Promises: CLI processes and the server open the same file at once, safely (WAL,
 * busy_timeout); every Kysely transaction takes the write lock up front (BEGIN IMMEDIATE);
 * migrations on SQLite run inside one transaction, so they are atomic and serialised
 * across processes; two stores on one file in one process take turns instead of
 * deadlocking (sqlite-file-turns.ts).
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  type SqliteDatabase,
  type SqliteDialectConfig,
  type SqliteStatement,
} from "kysely";
import { openDatabaseSync } from "./sqlite-connection.ts";
import { FileTurns } from "./sqlite-file-turns.ts";

/** Prepared statements kept per connection (bounded: query shapes built from user input could be many). */
const STATEMENT_CACHE_SIZE = 256;

export function createNodeSqliteDialect(path: string): SqliteDialect {
  const config: SqliteDialectConfig = {
    // Opened lazily on the first query: Kysely only closes a database it has initialised,
    // so an eagerly opened handle would leak if the store were destroyed before use.
    database: async function openNodeSqliteDatabase() {
      return new NodeSqliteDatabase(openDatabaseSync(path));
    },
  };
  return new NodeSqliteDialect(config, FileTurns.forPath(path));
}

class NodeSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  readonly #turns: FileTurns;

  constructor(config: SqliteDialectConfig, turns: FileTurns) {
    super(config);
    this.#config = config;
    this.#turns = turns;
  }

  override createDriver(): Driver {
    return new NodeSqliteDriver(this.#config, this.#turns);
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

class NodeSqliteDriver extends SqliteDriver {
  readonly #turns: FileTurns;
  #endTurn: (() => void) | undefined;

  constructor(config: SqliteDialectConfig, turns: FileTurns) {
    super(config);
    this.#turns = turns;
  }

  // Kysely already leases this driver's single connection to one caller at a time, so
  // one pending end-of-turn per driver is enough.
  override async acquireConnection(): Promise<DatabaseConnection> {
    const endTurn = await this.#turns.take();
    try {
      const connection = await super.acquireConnection();
      this.#endTurn = endTurn;
      return connection;
    } catch (error) {
      endTurn();
      throw error;
    }
  }

  override async releaseConnection(): Promise<void> {
    const endTurn = this.#endTurn;
    this.#endTurn = undefined;
    await super.releaseConnection();
    endTurn?.();
  }

  // A deferred BEGIN takes a read snapshot first; if another process commits before this
  // transaction's first write, the upgrade fails with SQLITE_BUSY at once, without waiting
  // on busy_timeout. Taking the write lock at BEGIN makes writers queue instead of fail.
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("begin immediate"));
  }
}

class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  // SQLite does support DDL in transactions. Kysely's default (false) makes the Migrator
  // run SQLite migrations statement by statement with no lock, so a failure leaves a
  // half-built schema and two processes starting together both apply the same migration.
  // In one BEGIN IMMEDIATE transaction the second process waits and finds them applied.
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class NodeSqliteDatabase implements SqliteDatabase {
  readonly #db: DatabaseSync;

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  // Kysely compiles the same few SQL texts over and over (one per query shape); preparing
  // each time showed up as the largest CPU cost per relayed message in the benchmark.
  readonly #statements = new Map<string, NodeSqliteStatement>();

  prepare(sql: string): SqliteStatement {
    const cached = this.#statements.get(sql);
    if (cached !== undefined) return cached;
    const statement = new NodeSqliteStatement(this.#db.prepare(sql));
    if (this.#statements.size >= STATEMENT_CACHE_SIZE) this.#statements.delete(this.#statements.keys().next().value!);
    this.#statements.set(sql, statement);
    return statement;
  }
}

class NodeSqliteStatement implements SqliteStatement {
  readonly #statement: StatementSync;
  /** Kysely reads rows from statements that return columns (SELECT, RETURNING, PRAGMA) and runs the rest. */
  readonly reader: boolean;
  readonly #columns: readonly string[];

  constructor(statement: StatementSync) {
    this.#statement = statement;
    this.#columns = statement.columns().map((column) => column.name);
    this.reader = this.#columns.length > 0;
    // Rows as value arrays, made into ordinary objects below: node:sqlite's own row objects have
    // a null prototype and had to be copied into ordinary ones (pg's rows are, and node:assert's
    // deepStrictEqual compares prototypes); building the object directly costs about half of
    // that copy, which was 16 % of loading a million routing rules (issue 11, start-up).
    if (this.reader) statement.setReturnArrays(true);
  }

  all(parameters: ReadonlyArray<unknown>): unknown[] {
    const rows = this.#statement.all(...toSqlInputs(parameters)) as unknown as unknown[][];
    const objects = new Array<Record<string, unknown>>(rows.length);
    for (let index = 0; index < rows.length; index++) objects[index] = this.#object(rows[index]!);
    return objects;
  }

  // a later column of the same name wins, as in node:sqlite's own row objects
  #object(values: readonly unknown[]): Record<string, unknown> {
    const row: Record<string, unknown> = {};
    for (let index = 0; index < this.#columns.length; index++) row[this.#columns[index]!] = values[index];
    return row;
  }

  run(parameters: ReadonlyArray<unknown>): { changes: number | bigint; lastInsertRowid: number | bigint } {
    const { changes, lastInsertRowid } = this.#statement.run(...toSqlInputs(parameters));
    return { changes, lastInsertRowid };
  }

  *iterate(parameters: ReadonlyArray<unknown>): IterableIterator<unknown> {
    for (const values of this.#statement.iterate(...toSqlInputs(parameters))) yield this.#object(values as unknown as unknown[]);
  }
}

// node:sqlite validates each value itself and throws naming the parameter, so no checks here.
function toSqlInputs(parameters: ReadonlyArray<unknown>): SQLInputValue[] {
  return parameters as SQLInputValue[];
}
