/**
 * QuietCheckpoint (src/store/quiet-checkpoint.ts): the WAL checkpoint runs once the writer has
 * gone quiet after a commit, never while commits keep coming, never twice at once, never without
 * a commit since the last one, never below 256 frames; a failure is dropped and the next quiet tries again; `stop`
 * cancels; the timer does not keep a process alive; a WAL is worth checkpointing from 256
 * frames. (On real SQLite files, with every store writer host: test/store/sqlite-writer.test.ts.)
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { fullyCheckpointed, QuietCheckpoint, walRestartSql, worthCheckpointing, type RunCheckpointStatement } from "../../src/store/quiet-checkpoint.ts";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `ready` holds, for at most `ms`: timers on a loaded machine fire late, never early. */
async function until(ready: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready() && Date.now() < deadline) await sleep(5);
}

/** The user version the database header holds in these tests: the restart must write it back. */
const USER_VERSION = 7;

/**
 * The statements a QuietCheckpoint runs, answered as SQLite would for a WAL of `frames` frames
 * none of which is in the database file yet; `checkpoint` is what its PASSIVE checkpoint does,
 * which leaves `left` frames out of the database file (a reader in the way).
 * (Its scheduling is what these tests are about; real files: test/store/sqlite-writer.test.ts.)
 */
function walOf(frames: number, checkpoint: () => unknown, left = 0): RunCheckpointStatement & { statements: string[] } {
  const statements: string[] = [];
  const run = async (sql: string) => {
    statements.push(sql);
    if (/\(NOOP\)/.test(sql)) return [{ busy: 0, log: frames, checkpointed: 0 }];
    if (sql === "PRAGMA user_version") return [{ user_version: USER_VERSION }];
    if (sql.startsWith("PRAGMA user_version =")) return [];
    assert.match(sql, /\(PASSIVE\)/);
    await checkpoint();
    return [{ busy: left > 0 ? 1 : 0, log: frames, checkpointed: frames - left }];
  };
  return Object.assign(run, { statements });
}

describe("QuietCheckpoint", () => {
  it("checkpoints once after a commit and the quiet that follows it, and not again without a commit", async () => {
    let runs = 0;
    const checkpoint = new QuietCheckpoint(walOf(300, () => runs++), 20);
    checkpoint.committed();
    checkpoint.committed();
    assert.equal(runs, 0, "not inside the commit's own turn");
    await until(() => runs > 0);
    assert.equal(runs, 1);
    await sleep(80);
    assert.equal(runs, 1, "no commit since: nothing to checkpoint");
    checkpoint.committed();
    await until(() => runs > 1);
    assert.equal(runs, 2);
    checkpoint.stop();
  });

  it("waits while commits keep coming closer together than the quiet", async () => {
    let runs = 0;
    const checkpoint = new QuietCheckpoint(walOf(300, () => runs++), 60);
    const started = Date.now();
    // a commit every 5 ms for 250 ms: each starts the quiet over
    while (Date.now() - started < 250) {
      checkpoint.committed();
      await sleep(5);
      // a pause this long only on a badly stalled machine: the quiet really happened then
      if (runs > 0) break;
    }
    const stalled = Date.now() - started < 250;
    if (!stalled) assert.equal(runs, 0, "a checkpoint ran between commits 5 ms apart");
    await until(() => runs > 0);
    assert.equal(runs, 1);
    checkpoint.stop();
  });

  it("never runs two at once: a quiet that ends during a slow checkpoint gets one more after it", async () => {
    let running = 0;
    let most = 0;
    let runs = 0;
    let release: () => void = () => undefined;
    const checkpoint = new QuietCheckpoint(
      walOf(300, async () => {
        runs++;
        running++;
        most = Math.max(most, running);
        await new Promise<void>((resolve) => (release = resolve));
        running--;
      }),
      10,
    );
    checkpoint.committed();
    await until(() => runs === 1);
    // committed while the first is still running: its own quiet ends before the first does
    checkpoint.committed();
    await sleep(60);
    assert.equal(runs, 1, "the second waits for the first");
    release();
    await until(() => runs === 2);
    release();
    assert.equal(runs, 2);
    assert.equal(most, 1);
    checkpoint.stop();
  });

  it("drops a failing checkpoint (thrown or rejected) and tries again after the next commit's quiet", async () => {
    let attempts = 0;
    const checkpoint = new QuietCheckpoint(
      walOf(300, () => {
        attempts++;
        if (attempts === 1) throw new Error("database is locked");
        if (attempts === 2) return Promise.reject(new Error("disk I/O error"));
        return undefined;
      }),
      10,
    );
    for (const expected of [1, 2, 3]) {
      checkpoint.committed();
      await until(() => attempts === expected);
      assert.equal(attempts, expected);
    }
    checkpoint.stop();
  });

  it("reads the WAL's state after the quiet and leaves a WAL under 256 frames as it is", async () => {
    const wal = walOf(255, () => assert.fail("checkpointed 255 frames"));
    const checkpoint = new QuietCheckpoint(wal, 10);
    checkpoint.committed();
    await until(() => wal.statements.length > 0);
    await sleep(30);
    assert.deepEqual(wal.statements, ["PRAGMA wal_checkpoint(NOOP)"]);
    checkpoint.stop();
  });

  it("starts a WAL it checkpointed whole over in the same quiet, with a write that changes nothing", async () => {
    const wal = walOf(300, () => undefined);
    const checkpoint = new QuietCheckpoint(wal, 10);
    checkpoint.committed();
    await until(() => wal.statements.length >= 4);
    await sleep(30);
    assert.deepEqual(wal.statements, ["PRAGMA wal_checkpoint(NOOP)", "PRAGMA wal_checkpoint(PASSIVE)", "PRAGMA user_version", `PRAGMA user_version = ${USER_VERSION}`]);
    checkpoint.stop();
  });

  it("leaves the WAL to the next write when the checkpoint could not take all of it (a reader in the way)", async () => {
    const wal = walOf(300, () => undefined, 40);
    const checkpoint = new QuietCheckpoint(wal, 10);
    checkpoint.committed();
    await until(() => wal.statements.length >= 2);
    await sleep(30);
    assert.deepEqual(wal.statements, ["PRAGMA wal_checkpoint(NOOP)", "PRAGMA wal_checkpoint(PASSIVE)"]);
    checkpoint.stop();
  });

  it("runs nothing once stopped, even with a commit pending", async () => {
    const wal = walOf(300, () => undefined);
    const checkpoint = new QuietCheckpoint(wal, 10);
    checkpoint.committed();
    checkpoint.stop();
    checkpoint.committed();
    await sleep(60);
    assert.deepEqual(wal.statements, []);
  });

  it("does not keep a process alive while a checkpoint waits for its quiet", async () => {
    const module = JSON.stringify(new URL("../../src/store/quiet-checkpoint.ts", import.meta.url).href);
    const script = `import { QuietCheckpoint } from ${module}; new QuietCheckpoint(() => { console.log("ran"); return []; }, 60_000).committed(); console.log("done");`;
    const started = Date.now();
    const { stdout } = await run(process.execPath, ["--input-type=module", "--eval", script], { timeout: 30_000 });
    assert.equal(stdout.trim(), "done");
    assert.ok(Date.now() - started < 30_000);
  });
});

describe("worthCheckpointing", () => {
  it("is true from 256 frames not yet in the database file, whatever the WAL held before", () => {
    assert.equal(worthCheckpointing({ log: 255, checkpointed: 0 }), false);
    assert.equal(worthCheckpointing({ log: 256, checkpointed: 0 }), true);
    assert.equal(worthCheckpointing({ log: 900, checkpointed: 645 }), false);
    assert.equal(worthCheckpointing({ log: 900, checkpointed: 644 }), true);
  });

  it("is false for a WAL it cannot read (no row, no WAL)", () => {
    assert.equal(worthCheckpointing(undefined), false);
    assert.equal(worthCheckpointing({ busy: 0, log: -1, checkpointed: -1 }), false);
  });
});

describe("fullyCheckpointed", () => {
  it("is true only for a checkpoint that took every frame of a WAL that had some, with no reader in the way", () => {
    assert.equal(fullyCheckpointed({ busy: 0, log: 300, checkpointed: 300 }), true);
    assert.equal(fullyCheckpointed({ busy: 0, log: 300, checkpointed: 299 }), false);
    assert.equal(fullyCheckpointed({ busy: 1, log: 300, checkpointed: 300 }), false);
    assert.equal(fullyCheckpointed({ busy: 0, log: 0, checkpointed: 0 }), false, "an empty WAL has nothing to start over");
    assert.equal(fullyCheckpointed({ busy: 0, log: -1, checkpointed: -1 }), false, "not in WAL mode");
    assert.equal(fullyCheckpointed(undefined), false);
  });
});

describe("walRestartSql", () => {
  it("writes back the user version it is given, as a whole number", () => {
    assert.equal(walRestartSql(0), "PRAGMA user_version = 0");
    assert.equal(walRestartSql(42), "PRAGMA user_version = 42");
    assert.equal(walRestartSql(-3), "PRAGMA user_version = -3");
  });
});
