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
 * pauses, SQLite's own auto-checkpoint still bounds the WAL (`WAL_AUTOCHECKPOINT_PAGES`).
 *
 * Only a WAL of `MIN_CHECKPOINT_FRAMES` or more is checkpointed in a quiet: at a steady few
 * messages a second every gap is a quiet, and a checkpoint per message would cost two fsyncs
 * each (a spinning disk's ~10 ms apiece) and write the same hot pages again and again. From 256
 * frames, a checkpoint comes every ~17 messages, long before the bound.
 *
 * A checkpoint that leaves every frame in the database file is followed, in the same quiet, by a
 * one-page write that starts the WAL over. SQLite starts a fully checkpointed WAL over in the next
 * write transaction, and that one writes a new WAL header and fsyncs it before its own frames (so a
 * write after the restart cannot reach the disk before the header that makes the old frames
 * stale). Left to the next message, that fsync was on its path: the claim before its final dot
 * (issue 11: the first message after every quiet checkpoint waited ~1 ms more for its claim here,
 * 1.66 against 0.68 ms; a spinning disk's fsync is ~10 ms).
 *
 * By hand: a timer refreshed on every commit. No maintained library schedules SQLite
 * checkpoints around a caller's own quiet periods.
 *
 * Promises: after `committed()`, the WAL's state is read through `run` once the writer has gone
 * `quietMs` without another commit, and the WAL checkpointed through it when worth it, then
 * started over when that checkpoint left nothing behind; not again until the next commit; never
 * while a checkpoint it started is still running; a failing checkpoint is dropped (the next quiet
 * tries again, the auto-checkpoint stays the bound); the timer never keeps the process alive;
 * `stop` cancels what is pending.
 */

/**
 * The WAL's bound (`PRAGMA wal_autocheckpoint`, set on every connection by
 * sqlite-connection.ts): the commit that takes the WAL past it checkpoints inline, and its
 * caller waits. SQLite's default, 1,000 pages, is ~65 relayed messages: a stream without 50 ms
 * pauses (one session sending back to back, or a burst of a hundred) crossed it in the middle,
 * and the message whose claim made that commit waited 5–10 ms (issue 11: 18 of ~1,300 writer
 * transactions over 3 ms one message at a time; 3 at 4,000 pages, p99 7.9 → 0.7 ms). At 4,000
 * pages (16 MiB of WAL at most) a burst of ~260 messages fits between two quiets; load that
 * never pauses pays the same copying in a quarter as many, longer stops.
 */
export const WAL_AUTOCHECKPOINT_PAGES = 4000;

/** How long the writer must go without a commit before its WAL is checkpointed, ms. */
export const QUIET_CHECKPOINT_MS = 50;

/** Frames not yet in the database file below which a quiet leaves the WAL as it is. */
export const MIN_CHECKPOINT_FRAMES = 256;

/**
 * What the WAL holds (`log` frames) and how many of them are in the database file already,
 * changing nothing: SQLite 3.51's NOOP mode (the pinned Node 24 has 3.53). An older SQLite reads
 * an unknown mode as PASSIVE, so there every quiet checkpoints, as before this threshold.
 */
const WAL_STATE_SQL = "PRAGMA wal_checkpoint(NOOP)";

/** SQLite's own mode that never waits for readers or writers, and that writers never wait for. */
const CHECKPOINT_SQL = "PRAGMA wal_checkpoint(PASSIVE)";

/**
 * The write that starts a fully checkpointed WAL over: the database header's user version set to
 * the value it has (read just before with `USER_VERSION_SQL`), so one page is written and nothing
 * changes. Nothing in mailroute uses the user version (kysely's migration table records the
 * schema), and a write that changes no schema leaves every connection's prepared statements valid.
 */
const USER_VERSION_SQL = "PRAGMA user_version";
export const walRestartSql = (userVersion: number): string => `PRAGMA user_version = ${Math.trunc(userVersion)}`;

/** Runs one statement on the writer's connection (outside any transaction): its rows. */
export type RunCheckpointStatement = (sql: string) => readonly Record<string, unknown>[] | Promise<readonly Record<string, unknown>[]>;

/**
 * Whether a checkpoint, as `CHECKPOINT_SQL` answers, left every frame of the WAL in the database
 * file with no reader in the way: then the next write starts the WAL over, so it is started now.
 */
export function fullyCheckpointed(result: Record<string, unknown> | undefined): boolean {
  const log = Number(result?.log ?? 0);
  return Number(result?.busy ?? 1) === 0 && log > 0 && Number(result?.checkpointed ?? 0) === log;
}

/** Whether the WAL, as `WAL_STATE_SQL` reads it, is worth two fsyncs now. */
export function worthCheckpointing(state: Record<string, unknown> | undefined): boolean {
  const log = Number(state?.log ?? 0);
  const checkpointed = Number(state?.checkpointed ?? 0);
  return log - checkpointed >= MIN_CHECKPOINT_FRAMES;
}

export class QuietCheckpoint {
  readonly #runStatement: RunCheckpointStatement;
  readonly #quietMs: number;
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  /** The quiet ended while a checkpoint was still running: another one is due once it ends. */
  #again = false;
  #stopped = false;

  constructor(run: RunCheckpointStatement, quietMs: number = QUIET_CHECKPOINT_MS) {
    this.#runStatement = run;
    this.#quietMs = quietMs;
  }

  /** A commit just happened: the checkpoint waits until `quietMs` pass without another. */
  committed(): void {
    if (this.#stopped) return;
    if (this.#timer === null) {
      this.#timer = setTimeout(() => void this.#whenQuiet(), this.#quietMs);
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

  async #whenQuiet(): Promise<void> {
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
      const [state] = await this.#runStatement(WAL_STATE_SQL);
      if (worthCheckpointing(state)) {
        const [result] = await this.#runStatement(CHECKPOINT_SQL);
        if (fullyCheckpointed(result)) {
          const [header] = await this.#runStatement(USER_VERSION_SQL);
          await this.#runStatement(walRestartSql(Number(header?.user_version ?? 0)));
        }
      }
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
