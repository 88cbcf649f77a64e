/**
 * QuietCheckpoint: the WAL checkpoint of the connection that writes every relayed message's
 * rows (the store writer's, sqlite-writer-service.ts or sqlite-group-commit.ts), run once that
 * writer has been quiet for `quietMs` after a commit, instead of inside the commit that happens
 * to cross SQLite's auto-checkpoint threshold.
 *
 * Why: SQLite checkpoints in the commit that takes the WAL past `wal_autocheckpoint` pages, and
 * that commit's caller waits for it. A relayed message adds ~15 pages to the WAL (its ledger
 * intent and acceptance, its event and the hourly counter, with their indexes), so at the default
 * 1,000 pages one message in ~65 waited ~5–8 ms for the checkpoint's two fsyncs on the store
 * writer thread (issue 11: profiled, 4 of every 300 messages, the whole of the latency p99 step
 * over the sink). Run where nobody waits for the writer, a checkpoint costs no message anything.
 * Mail comes in bursts, so a quiet moment comes soon after most commits; under load that never
 * pauses the auto-checkpoint still bounds the WAL (sqlite-connection.ts sets it).
 *
 * By hand: a timer refreshed on every commit. No maintained library schedules SQLite
 * checkpoints around a caller's own quiet periods.
 *
 * Promises: after `committed()`, `checkpoint` runs once the writer has gone `quietMs` without
 * another commit, and not again until the next commit; never while a checkpoint it started is
 * still running; a failing checkpoint is dropped (the next quiet tries again, the auto-checkpoint
 * stays the bound); the timer never keeps the process alive; `stop` cancels what is pending.
 */

/** How long the writer must go without a commit before its WAL is checkpointed, ms. */
export const QUIET_CHECKPOINT_MS = 50;

/** SQLite's own mode that never waits for readers or writers, and that writers never wait for. */
export const CHECKPOINT_SQL = "PRAGMA wal_checkpoint(PASSIVE)";

export class QuietCheckpoint {
  readonly #checkpoint: () => unknown;
  readonly #quietMs: number;
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  /** The quiet ended while a checkpoint was still running: another one is due once it ends. */
  #again = false;
  #stopped = false;

  constructor(checkpoint: () => unknown, quietMs: number = QUIET_CHECKPOINT_MS) {
    this.#checkpoint = checkpoint;
    this.#quietMs = quietMs;
  }

  /** A commit just happened: the checkpoint waits until `quietMs` pass without another. */
  committed(): void {
    if (this.#stopped) return;
    if (this.#timer === null) {
      this.#timer = setTimeout(() => void this.#run(), this.#quietMs);
      this.#timer.unref();
    } else {
      // cheaper than a new timer per commit: the same one, its countdown started again
      this.#timer.refresh();
    }
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #run(): Promise<void> {
    this.#timer = null;
    if (this.#stopped) return;
    if (this.#running) {
      // the one in progress ends, then this commit's quiet starts over
      this.#again = true;
      return;
    }
    this.#running = true;
    this.#again = false;
    try {
      await this.#checkpoint();
    } catch {
      // a busy or failing checkpoint costs nothing: the next quiet tries again
    } finally {
      this.#running = false;
    }
    if (this.#again) {
      this.#again = false;
      this.committed();
    }
  }
}
