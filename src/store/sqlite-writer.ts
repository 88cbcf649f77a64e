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
 * - the jobs given in one turn of the event loop go to the thread in one message, after this
 *   turn's I/O callbacks, and their answers come back in one: each message is a wake-up of the
 *   other thread and a serialisation, and every relayed message makes four jobs (the ledger's
 *   view, claim and acceptance, its events) from whichever sessions had work in that turn;
 * - the thread is a second connection like a CLI process's (WAL, busy_timeout): it never
 *   deadlocks with the Kysely connection of the SMTP thread, it only waits for its lock;
 * - a thread that dies fails only the jobs it held, and the next job starts a new one;
 *   `close` waits for the jobs in flight, then closes the connection;
 * - an idle writer does not keep the process alive.
 */
import { Worker, type MessagePort } from "node:worker_threads";
import type { WriterAnswer, WriterJob, WriterStatement } from "./sqlite-writer-service.ts";

export type { WriterStatement };
export type WriterRows = Record<string, unknown>[];

/**
 * Where the writes every relayed message makes go (the ledger, the activity events), as
 * compiled statements: a writer thread (SqliteWriter) or this thread, grouped per turn of the
 * event loop (sqlite-group-commit.ts).
 */
export interface StoreWriter {
  /** Runs `statements` in order (in one transaction when `transaction`); each statement's rows. */
  run(statements: readonly WriterStatement[], options: { transaction: boolean }): Promise<WriterRows[]>;
  close(): Promise<void>;
}

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

/** Where jobs go: a Worker of the writer's own, or a port to a writer service on another thread. */
type Endpoint = Pick<Worker, "postMessage" | "ref" | "unref"> | Pick<MessagePort, "postMessage" | "ref" | "unref">;

interface Link {
  ready: Promise<Endpoint>;
  pending: Map<number, Pending>;
  /** Jobs given this turn, posted together once its I/O callbacks are done. */
  outbox: WriterJob[];
  /** Asks the service to close its connection; resolves once it did, or its thread is gone. */
  close(): Promise<void>;
}

/** The port of a writer service (sqlite-writer-service.ts) on a thread that hosts it; a new one after that thread was replaced. */
export type WriterHost = () => Promise<MessagePort>;

export class SqliteWriter implements StoreWriter {
  readonly #open: () => Link;
  #link: Link | null = null;
  #nextId = 0;
  #closed = false;

  private constructor(open: (writer: SqliteWriter) => Link) {
    this.#open = () => open(this);
  }

  /** A writer on the SQLite file at `path`, on a thread of its own, started and its connection open. */
  static async start(path: string): Promise<SqliteWriter> {
    const writer = new SqliteWriter((self) => self.#ownThread(path));
    await writer.#current().ready;
    return writer;
  }

  /** A writer on a thread `host` already runs (the host opened the connection), its first port obtained. */
  static async hostedBy(host: WriterHost): Promise<SqliteWriter> {
    const writer = new SqliteWriter((self) => self.#hosted(host));
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
    const link = this.#current();
    const endpoint = await link.ready;
    const id = this.#nextId++;
    return new Promise<WriterRows[]>((resolve, reject) => {
      link.pending.set(id, { resolve, reject });
      // a job in flight keeps the process up until it is answered; an idle writer does not
      if (link.pending.size === 1) endpoint.ref();
      link.outbox.push({ id, statements, transaction: options.transaction });
      if (link.outbox.length === 1) setImmediate(() => this.#post(link, endpoint));
    });
  }

  /** Posts the link's outbox as one batch (sqlite-writer-service.ts answers it in one). */
  #post(link: Link, endpoint: Endpoint): void {
    const jobs = link.outbox;
    link.outbox = [];
    endpoint.postMessage(jobs);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    await this.#link?.close();
  }

  #current(): Link {
    this.#link ??= this.#open();
    return this.#link;
  }

  /** Answers to the link's jobs, and what fails them all: the thread or port going away. */
  #wire(link: Link, endpoint: Endpoint, listen: (listener: (answers: WriterAnswer[] | "ready") => void) => void): (error: Error) => void {
    listen((answers) => {
      if (typeof answers !== "object") return;
      for (const answer of answers) {
        const waiting = link.pending.get(answer.id);
        link.pending.delete(answer.id);
        if (link.pending.size === 0) endpoint.unref();
        if (waiting === undefined) continue;
        if ("error" in answer) waiting.reject(new SqliteWriterError(answer.error.message, answer.error.code));
        else waiting.resolve(answer.rows);
      }
    });
    // a thread that dies fails only its own jobs; the next job gets a new link
    return (error: Error) => {
      for (const waiting of link.pending.values()) waiting.reject(error);
      link.pending.clear();
      if (this.#link === link) this.#link = null;
    };
  }

  #ownThread(path: string): Link {
    const worker = new Worker(THREAD_URL, { workerData: { path }, name: "mailroute-store-writer", resourceLimits: THREAD_LIMITS });
    const link: Link = {
      pending: new Map(),
      outbox: [],
      ready: new Promise<Endpoint>((resolve, reject) => {
        worker.once("message", () => resolve(worker));
        worker.once("error", reject);
        worker.once("exit", (code) => reject(new Error(`store writer thread exited (${code}) before it was ready`)));
      }),
      close: async () => {
        const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
        worker.ref();
        worker.postMessage("close");
        await exited;
      },
    };
    link.ready.then(() => worker.unref(), () => undefined);
    const fail = this.#wire(link, worker, (listener) => worker.on("message", listener));
    worker.on("error", (error) => fail(new Error(`store writer thread failed: ${error.message}`)));
    worker.on("exit", (code) => fail(new Error(`store writer thread exited (${code})`)));
    return link;
  }

  #hosted(host: WriterHost): Link {
    // settles when the port closes: the service closed it, or its thread ended
    let ended: Promise<void> = Promise.resolve();
    const link: Link = {
      pending: new Map(),
      outbox: [],
      ready: host().then(
        (port) =>
          new Promise<Endpoint>((resolve, reject) => {
            const fail = this.#wire(link, port, (listener) => port.on("message", listener));
            ended = new Promise((settle) =>
              port.once("close", () => {
                reject(new Error("the store writer's host thread went away before it was ready"));
                fail(new Error("the store writer's host thread went away"));
                settle();
              }),
            );
            port.once("message", () => resolve(port));
          }),
      ),
      close: async () => {
        const port = await link.ready.catch(() => null);
        if (port === null) return;
        port.ref();
        port.postMessage("close");
        await ended;
      },
    };
    // a failed host leaves no link behind: the next job asks again
    link.ready.then(
      (endpoint) => endpoint.unref(),
      () => {
        if (this.#link === link) this.#link = null;
      },
    );
    return link;
  }
}
