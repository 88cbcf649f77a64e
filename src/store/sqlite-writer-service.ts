/**
 * The store writer's statement runner (sqlite-writer.ts), on whichever thread hosts it: a thread
 * of its own (sqlite-writer-thread.ts) or the first signing thread (signing-worker.ts), so one
 * worker thread serves both and the ~12 MiB of a second one is saved (issue 11, RSS).
 *
 * Promises: `serveWrites` opens its own connection to the SQLite file (sqlite-connection.ts),
 * posts "ready" on `port`, and then runs the jobs it receives there in batches (each the jobs
 * one turn of the SMTP thread gave, sqlite-writer.ts) — one at a time, in order, each job's
 * statements in one transaction (BEGIN IMMEDIATE … COMMIT, rolled back whole on any error) when
 * it asks for one, each job committed on its own. Every job gets exactly one answer
 * with its id, after its commit: the rows of each statement that returns columns (empty for the
 * others), or `{ error }` with SQLite's message and code; a batch's answers go back together,
 * in one message, once its last job ran. Once the jobs pause for 50 ms after a commit, the WAL
 * is checkpointed when it holds 256 frames or more (quiet-checkpoint.ts). "close" closes the
 * connection, then the port. Statements are prepared once per SQL text (a bounded cache). Loads
 * node:sqlite only.
 */
import type { StatementSync } from "node:sqlite";
import type { MessagePort } from "node:worker_threads";
import { QuietCheckpoint } from "./quiet-checkpoint.ts";
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

export function serveWrites(port: MessagePort, path: string): void {
  const db = openDatabaseSync(path);
  const statements = new Map<string, StatementSync>();
  // the WAL is checkpointed here once the jobs pause, not inside the job that crosses the
  // auto-checkpoint threshold: that job's message would wait for two fsyncs (quiet-checkpoint.ts)
  const checkpoint = new QuietCheckpoint((sql) => prepared(sql).all());

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

  function answer(job: WriterJob): WriterAnswer {
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
      checkpoint.committed();
      return { id: job.id, rows };
    } catch (error) {
      const failure = error as Error & { code?: string };
      return { id: job.id, error: { message: failure.message, ...(typeof failure.code === "string" ? { code: failure.code } : {}) } };
    }
  }

  port.on("message", (jobs: WriterJob[] | "close") => {
    if (jobs === "close") {
      checkpoint.stop();
      db.close();
      port.close();
      return;
    }
    port.postMessage(jobs.map(answer));
  });
  port.postMessage("ready");
}
