/**
 * SqliteGroupCommit: the store writer's contract (`StoreWriter`, sqlite-writer.ts) as a queue of
 * jobs that are committed together, once per turn of the event loop, on the connection a lender
 * gives: the SMTP thread's without a store writer thread (`--store-writer-thread false`, Kysely's
 * own connection, kysely-connection-lease.ts). The writes every relayed message makes (the
 * delivery ledger's claim, acceptance and settlement, the activity events) from every session
 * go to the store in one transaction per turn instead of one each.
 *
 * Not on the store writer thread (sqlite-writer-service.ts): there it did not change throughput
 * (the SMTP thread is the bottleneck beside it; interleaved, 2 rounds of every cell), so that
 * thread still commits job by job.
 *
 * Why: on SQLite a commit (its WAL append, ~80–115 µs here) costs more than the rows it carries,
 * and each message made three. On the SMTP thread they cost the one-thread node ~20 % of its
 * throughput and ~15–20 MiB RSS at 50 sessions against the same node with no writes at all
 * (issue 11, measured side by side). By hand: no maintained library batches node:sqlite
 * statements across callers; this is a queue drained once per turn.
 *
 * Promises:
 * - `run` resolves once its statements ran and were committed, with each statement's rows (empty
 *   for the ones that return no columns), or rejects with SQLite's error (`SqliteWriterError`);
 * - jobs given in the same turn of the event loop (and while a batch is being written) go to the
 *   store in one transaction (BEGIN IMMEDIATE … COMMIT), in the order given. Each job is a
 *   savepoint of its own: a job whose statement fails is rolled back whole and rejected alone,
 *   the others still commit; a failed COMMIT (or BEGIN) rejects every job of its batch;
 * - a batch runs only while the lender lends the connection (Kysely's: never inside a transaction
 *   another caller has open on it; that caller's statements would have joined the batch);
 * - `close` waits for every job given before it; later ones are refused;
 * - once the batches pause for `quietCheckpointMs` (50 ms) after a commit, a WAL of 256 frames or
 *   more is checkpointed on the lent connection (quiet-checkpoint.ts), so the batch that crosses the
 *   auto-checkpoint threshold does not hold the event loop for it.
 * Loads no Kysely (the lender does).
 */
import { QuietCheckpoint } from "./quiet-checkpoint.ts";
import { SqliteWriterError, type StoreWriter, type WriterRows, type WriterStatement } from "./sqlite-writer.ts";

/** Runs one statement on the connection a batch holds: its rows (empty for statements that return no columns). */
export type RunStatement = (statement: WriterStatement) => WriterRows | Promise<WriterRows>;
/** Lends the connection for one batch: calls `batch` with a way to run statements on it, settles when it did. */
export type LendConnection = (batch: (run: RunStatement) => Promise<void>) => Promise<void>;

interface Job {
  statements: readonly WriterStatement[];
  resolve(rows: WriterRows[]): void;
  reject(error: Error): void;
}

const plain = (sql: string): WriterStatement => Object.freeze({ sql, parameters: Object.freeze([]) });
const BEGIN = plain("begin immediate");
const COMMIT = plain("commit");
const ROLLBACK = plain("rollback");
const SAVEPOINT = plain("savepoint job");
const RELEASE = plain("release job");
const ROLLBACK_JOB = plain("rollback to job");

export class SqliteGroupCommit implements StoreWriter {
  readonly #lend: LendConnection;
  #waiting: Job[] = [];
  #scheduled = false;
  #closed = false;
  readonly #batches = new Set<Promise<void>>();
  // on this thread too, the checkpoint waits for a pause in the batches rather than stopping the
  // event loop inside the batch that crosses the auto-checkpoint threshold (quiet-checkpoint.ts)
  readonly #checkpoint: QuietCheckpoint;

  constructor(lend: LendConnection, quietCheckpointMs?: number) {
    this.#lend = lend;
    this.#checkpoint = new QuietCheckpoint(async (sql) => {
      let rows: WriterRows = [];
      await this.#track(
        this.#lend(async (run) => {
          rows = await run(plain(sql));
        }),
      );
      return rows;
    }, quietCheckpointMs);
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
    this.#checkpoint.stop();
    // the jobs given before: written now rather than at their turn (which then finds none)
    this.#drain();
    await Promise.allSettled([...this.#batches]);
  }

  #drain(): void {
    this.#scheduled = false;
    const jobs = this.#waiting;
    if (jobs.length === 0) return;
    this.#waiting = [];
    void this.#track(this.#commit(jobs));
  }

  /** `close` waits for it: a batch, or a checkpoint on the lent connection. */
  #track(work: Promise<void>): Promise<void> {
    this.#batches.add(work);
    void work.finally(() => this.#batches.delete(work)).catch(() => undefined);
    return work;
  }

  async #commit(jobs: readonly Job[]): Promise<void> {
    const outcomes: (WriterRows[] | Error)[] = [];
    try {
      await this.#lend(async (run) => {
        await run(BEGIN);
        try {
          for (const job of jobs) outcomes.push(await runJob(run, job.statements));
          await run(COMMIT);
        } catch (error) {
          try {
            await run(ROLLBACK);
          } catch {
            // no transaction left to roll back: the failure that got here is the one to report
          }
          throw error;
        }
      });
    } catch (error) {
      const failure = writerError(error);
      for (const job of jobs) job.reject(failure);
      return;
    }
    this.#checkpoint.committed();
    jobs.forEach((job, index) => {
      const outcome = outcomes[index]!;
      if (outcome instanceof Error) job.reject(outcome);
      else job.resolve(outcome);
    });
  }
}

/** One job's statements inside its savepoint: their rows, or the error that undid them all. */
async function runJob(run: RunStatement, statements: readonly WriterStatement[]): Promise<WriterRows[] | Error> {
  await run(SAVEPOINT);
  try {
    const rows: WriterRows[] = [];
    for (const statement of statements) rows.push(await run(statement));
    await run(RELEASE);
    return rows;
  } catch (error) {
    try {
      // undoes this job only
      await run(ROLLBACK_JOB);
      await run(RELEASE);
    } catch {
      // SQLite rolled the whole transaction back (RAISE(ROLLBACK), some I/O and full-disk errors):
      // the batch fails, every job in it, with this job's error
      throw error;
    }
    return writerError(error);
  }
}

function writerError(error: unknown): SqliteWriterError {
  const failure = error as Error & { code?: unknown };
  return new SqliteWriterError(failure.message ?? String(error), typeof failure.code === "string" ? failure.code : undefined);
}
