/**
 * SqliteGroupCommit: the store writer's contract (`StoreWriter`, sqlite-writer.ts) on the calling
 * thread, for a node that writes without a store writer thread (`--store-writer-thread false`):
 * the writes every relayed message makes (the delivery ledger's view, claim, acceptance and
 * settlement, the activity events) from every session, gathered while the event loop turns and
 * committed together.
 *
 * Why: node:sqlite is synchronous, and on SQLite a commit (its WAL append and the index update)
 * costs more than the rows it carries. Each message used to make three commits of its own on
 * this thread, through Kysely's query builder; that cost the single-threaded node ~20 % of its
 * throughput and ~15–20 MiB RSS at 50 sessions against the same node with no writes at all
 * (issue 11, measured side by side). By hand: no maintained library batches node:sqlite
 * statements across callers; this is a queue drained once per turn, as the writer thread's is.
 *
 * Promises:
 * - `run` resolves once its statements ran and were committed, with each statement's rows (empty
 *   for the ones that return no columns), or rejects with SQLite's error (`SqliteWriterError`);
 * - jobs given in the same turn of the event loop (and while a batch is being written) go to the
 *   store in one transaction (BEGIN IMMEDIATE … COMMIT), in the order given. Each job is a
 *   savepoint of its own: a job whose statement fails is rolled back whole and rejected alone,
 *   the others still commit; a failed COMMIT (or BEGIN) rejects every job of its batch;
 * - batches run on the store's own Kysely connection, which Kysely lends to one caller at a time:
 *   a batch never lands inside a transaction another caller has open on it (that caller's
 *   statements would join the batch), it waits for it, as any query does;
 * - `close` waits for every job given before it; later ones are refused.
 */
import { CompiledQuery, type Kysely } from "kysely";
import type { Database } from "./schema.ts";
import { SqliteWriterError, type StoreWriter, type WriterRows, type WriterStatement } from "./sqlite-writer.ts";

interface Job {
  statements: readonly WriterStatement[];
  resolve(rows: WriterRows[]): void;
  reject(error: Error): void;
}

const BEGIN = CompiledQuery.raw("begin immediate");
const COMMIT = CompiledQuery.raw("commit");
const ROLLBACK = CompiledQuery.raw("rollback");
const SAVEPOINT = CompiledQuery.raw("savepoint job");
const RELEASE = CompiledQuery.raw("release job");
const ROLLBACK_JOB = CompiledQuery.raw("rollback to job");

export class SqliteGroupCommit implements StoreWriter {
  readonly #db: Kysely<Database>;
  #waiting: Job[] = [];
  #scheduled = false;
  #closed = false;
  readonly #batches = new Set<Promise<void>>();

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Runs `statements` in order, together (`transaction` is implied: a job is one savepoint). */
  run(statements: readonly WriterStatement[], _options?: { transaction: boolean }): Promise<WriterRows[]> {
    if (this.#closed) return Promise.reject(new Error("the store writer is closed"));
    return new Promise<WriterRows[]>((resolve, reject) => {
      this.#waiting.push({ statements, resolve, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      // after this turn's I/O callbacks: every session that had something to write has written it
      setImmediate(() => this.#drain());
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    // the jobs given before: written now rather than at their turn (which then finds none)
    this.#drain();
    await Promise.allSettled([...this.#batches]);
  }

  #drain(): void {
    this.#scheduled = false;
    const jobs = this.#waiting;
    if (jobs.length === 0) return;
    this.#waiting = [];
    const batch = this.#commit(jobs);
    this.#batches.add(batch);
    void batch.finally(() => this.#batches.delete(batch));
  }

  async #commit(jobs: readonly Job[]): Promise<void> {
    const outcomes: (WriterRows[] | Error)[] = [];
    try {
      await this.#db.connection().execute(async (connection) => {
        await connection.executeQuery(BEGIN);
        try {
          for (const job of jobs) outcomes.push(await runJob(connection, job.statements));
          await connection.executeQuery(COMMIT);
        } catch (error) {
          await connection.executeQuery(ROLLBACK).catch(() => undefined);
          throw error;
        }
      });
    } catch (error) {
      const failure = writerError(error);
      for (const job of jobs) job.reject(failure);
      return;
    }
    jobs.forEach((job, index) => {
      const outcome = outcomes[index]!;
      if (outcome instanceof Error) job.reject(outcome);
      else job.resolve(outcome);
    });
  }
}

/** One job's statements inside its savepoint: their rows, or the error that undid them all. */
async function runJob(connection: Kysely<Database>, statements: readonly WriterStatement[]): Promise<WriterRows[] | Error> {
  await connection.executeQuery(SAVEPOINT);
  try {
    const rows: WriterRows[] = [];
    for (const statement of statements) rows.push((await connection.executeQuery<Record<string, unknown>>(CompiledQuery.raw(statement.sql, [...statement.parameters]))).rows as WriterRows);
    await connection.executeQuery(RELEASE);
    return rows;
  } catch (error) {
    // undoes this job only; a rollback that fails leaves the batch to fail at its COMMIT
    await connection.executeQuery(ROLLBACK_JOB);
    await connection.executeQuery(RELEASE);
    return writerError(error);
  }
}

function writerError(error: unknown): SqliteWriterError {
  const failure = error as Error & { code?: unknown };
  return new SqliteWriterError(failure.message ?? String(error), typeof failure.code === "string" ? failure.code : undefined);
}
