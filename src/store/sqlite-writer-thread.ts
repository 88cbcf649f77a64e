/**
 * The body of the store writer thread (sqlite-writer.ts): its own connection to the SQLite file,
 * running the statements it is sent — one job at a time, each job's statements in one
 * transaction (BEGIN IMMEDIATE … COMMIT, rolled back whole on any error) when it asks for one.
 *
 * Promises: every job gets exactly one answer with its id, after its commit: the rows of each
 * statement that returns columns (empty for the others), or `{ error }` with SQLite's message
 * and code. Statements are prepared once per SQL text (a bounded cache). Loads node:sqlite only.
 */
import type { StatementSync } from "node:sqlite";
import { parentPort, workerData } from "node:worker_threads";
import { openDatabaseSync } from "./sqlite-connection.ts";

export interface WriterStatement {
  sql: string;
  parameters: readonly unknown[];
}

export interface WriterJob {
  id: number;
  statements: readonly WriterStatement[];
  transaction: boolean;
}

export type WriterAnswer = { id: number; rows: Record<string, unknown>[][] } | { id: number; error: { message: string; code?: string } };

// as the Kysely dialect bounds its own (node-sqlite-dialect.ts)
const STATEMENT_CACHE_SIZE = 256;

if (parentPort === null) throw new Error("sqlite-writer-thread.ts runs as a worker thread (sqlite-writer.ts starts it)");
const port = parentPort;
const db = openDatabaseSync((workerData as { path: string }).path);
const statements = new Map<string, StatementSync>();

function prepared(sql: string): StatementSync {
  let statement = statements.get(sql);
  if (statement === undefined) {
    statement = db.prepare(sql);
    if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
    statements.set(sql, statement);
  }
  return statement;
}

function run({ sql, parameters }: WriterStatement): Record<string, unknown>[] {
  const statement = prepared(sql);
  const values = parameters as Parameters<StatementSync["run"]>;
  if (statement.columns().length > 0) return statement.all(...values) as Record<string, unknown>[];
  statement.run(...values);
  return [];
}

port.on("message", (job: WriterJob | "close") => {
  if (job === "close") {
    db.close();
    port.close();
    return;
  }
  try {
    if (job.transaction) db.exec("BEGIN IMMEDIATE");
    let rows: Record<string, unknown>[][];
    try {
      rows = job.statements.map(run);
      if (job.transaction) db.exec("COMMIT");
    } catch (error) {
      if (job.transaction && db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
    port.postMessage({ id: job.id, rows } satisfies WriterAnswer);
  } catch (error) {
    const failure = error as Error & { code?: string };
    port.postMessage({ id: job.id, error: { message: failure.message, ...(typeof failure.code === "string" ? { code: failure.code } : {}) } } satisfies WriterAnswer);
  }
});
port.postMessage("ready");
