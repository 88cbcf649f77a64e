/**
 * Turns on an SQLite database file, shared by every connection to it in this process.
 *
 * node:sqlite is synchronous: if connection A holds the write lock and is awaiting its next
 * statement while connection B (same process) blocks in busy_timeout, the event loop that
 * would let A finish is frozen, and B fails with SQLITE_BUSY after 5 s. So connections to
 * one file in one process (a test, or an in-process CLI beside the server) take turns, one
 * Kysely connection lease at a time: a whole transaction, or a single statement.
 * Other processes are kept apart by SQLite's own locks, not by this.
 */
import { resolve } from "node:path";

export class FileTurns {
  static readonly #byPath = new Map<string, FileTurns>();

  static forPath(path: string): FileTurns {
    const key = resolve(path);
    let turns = FileTurns.#byPath.get(key);
    if (turns === undefined) {
      turns = new FileTurns();
      FileTurns.#byPath.set(key, turns);
    }
    return turns;
  }

  #tail: Promise<void> = Promise.resolve();

  /** Resolves when it is the caller's turn, with the function that ends it. */
  async take(): Promise<() => void> {
    let end!: () => void;
    const turn = new Promise<void>((resolveTurn) => {
      end = resolveTurn;
    });
    const previous = this.#tail;
    this.#tail = previous.then(() => turn);
    await previous;
    return end;
  }
}
