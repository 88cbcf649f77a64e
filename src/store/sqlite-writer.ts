/**
 * SqliteWriter: a thread with its own connection to the SQLite file, for the writes every
 * relayed message makes (the delivery ledger's intent and acceptance, the activity events).
 * node:sqlite is synchronous, so on the SMTP thread each of those statements, its commit and
 * its WAL writes stopped everything else: with them, the 1 KiB relay ran at ~800 msg/s; with
 * them taken away entirely, at ~1,200 (issue 11). Here they run beside the SMTP thread, which
 * only posts them and reads the answer. (By hand: Kysely's dialects run on the calling thread, and
 * no maintained library puts node:sqlite on a worker thread; this is a queue of statements and
 * their answers, with SQL that Kysely compiled.)
 *
 * Promises:
 * - `run` resolves once the statements ran — in one transaction when asked, committed before
 *   the answer — with each statement's rows, or rejects with SQLite's error (message, code);
 *   jobs run one at a time, in the order they were given;
 * - the thread is a second connection like a CLI process's (WAL, busy_timeout): it never
 *   deadlocks with the Kysely connection of the SMTP thread, it only waits for its lock;
 * - a thread that dies fails only the jobs it held, and the next job starts a new one;
 *   `close` waits for the jobs in flight, then closes the connection;
 * - an idle writer does not keep the process alive.
 */
import { Worker } from "node:worker_threads";
import type { WriterAnswer, WriterJob, WriterStatement } from "./sqlite-writer-thread.ts";

export type { WriterStatement };
export type WriterRows = Record<string, unknown>[];

const THREAD_URL = new URL("./sqlite-writer-thread.ts", import.meta.url);
// the thread holds a few statements and the rows of one job: a small young generation keeps its
// heap near that, as for the signing threads
const THREAD_LIMITS = Object.freeze({ maxYoungGenerationSizeMb: 4 });

export class SqliteWriterError extends Error {
  readonly code: string | undefined;

  constructor(message: string, code: string | undefined) {
    super(message);
    this.name = "SqliteWriterError";
    this.code = code;
  }
}

interface Pending {
  resolve(rows: WriterRows[]): void;
  reject(error: Error): void;
}

interface Thread {
  worker: Worker;
  ready: Promise<void>;
  pending: Map<number, Pending>;
}

export class SqliteWriter {
  readonly #path: string;
  #thread: Thread | null = null;
  #nextId = 0;
  #closed = false;

  private constructor(path: string) {
    this.#path = path;
  }

  /** A writer on the SQLite file at `path`, its thread started and its connection open. */
  static async start(path: string): Promise<SqliteWriter> {
    const writer = new SqliteWriter(path);
    await writer.#current().ready;
    return writer;
  }

  /** Runs `statements` in order (in one transaction when `transaction`); each statement's rows. */
  run(statements: readonly WriterStatement[], options: { transaction: boolean }): Promise<WriterRows[]> {
    if (this.#closed) return Promise.reject(new Error("the store writer is closed"));
    const job = this.#run(statements, options);
    // close() waits for every job given before it, answered or failed
    this.#inFlight.add(job);
    void job.then(
      () => this.#inFlight.delete(job),
      () => this.#inFlight.delete(job),
    );
    return job;
  }

  readonly #inFlight = new Set<Promise<WriterRows[]>>();

  async #run(statements: readonly WriterStatement[], options: { transaction: boolean }): Promise<WriterRows[]> {
    const thread = this.#current();
    await thread.ready;
    const id = this.#nextId++;
    return new Promise<WriterRows[]>((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      // a job in flight keeps the process up until it is answered; an idle writer does not
      if (thread.pending.size === 1) thread.worker.ref();
      const job: WriterJob = { id, statements, transaction: options.transaction };
      thread.worker.postMessage(job);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    const thread = this.#thread;
    if (thread === null) return;
    const exited = new Promise<void>((resolve) => thread.worker.once("exit", () => resolve()));
    thread.worker.ref();
    thread.worker.postMessage("close");
    await exited;
  }

  #current(): Thread {
    if (this.#thread !== null) return this.#thread;
    const worker = new Worker(THREAD_URL, { workerData: { path: this.#path }, name: "mailroute-store-writer", resourceLimits: THREAD_LIMITS });
    const pending = new Map<number, Pending>();
    const thread: Thread = {
      worker,
      pending,
      ready: new Promise<void>((resolve, reject) => {
        worker.once("message", () => resolve());
        worker.once("error", reject);
        worker.once("exit", (code) => reject(new Error(`store writer thread exited (${code}) before it was ready`)));
      }),
    };
    thread.ready.then(() => worker.unref(), () => undefined);
    worker.on("message", (answer: WriterAnswer | "ready") => {
      if (typeof answer !== "object") return;
      const waiting = pending.get(answer.id);
      pending.delete(answer.id);
      if (pending.size === 0) worker.unref();
      if (waiting === undefined) return;
      if ("error" in answer) waiting.reject(new SqliteWriterError(answer.error.message, answer.error.code));
      else waiting.resolve(answer.rows);
    });
    // a thread that dies fails only its own jobs; the next job gets a new thread
    const fail = (error: Error) => {
      for (const waiting of pending.values()) waiting.reject(error);
      pending.clear();
      if (this.#thread === thread) this.#thread = null;
    };
    worker.on("error", (error) => fail(new Error(`store writer thread failed: ${error.message}`)));
    worker.on("exit", (code) => fail(new Error(`store writer thread exited (${code})`)));
    this.#thread = thread;
    return thread;
  }
}
