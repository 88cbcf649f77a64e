/**
 * The pragmas every connection to a mailroute SQLite file gets, on a real file: here the WAL's
 * bound, past which a commit checkpoints inline and its caller waits (quiet-checkpoint.ts).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { WAL_AUTOCHECKPOINT_PAGES } from "../../src/store/quiet-checkpoint.ts";
import { openDatabaseSync } from "../../src/store/sqlite-connection.ts";

describe("openDatabaseSync", () => {
  it("lets a burst of commits well past SQLite's default 1,000 pages grow the WAL without an inline checkpoint, up to its own bound", () => {
    const dir = mkdtempSync(join(tmpdir(), "mailroute-sqlite-connection-"));
    const db = openDatabaseSync(join(dir, "mailroute.db"));
    try {
      db.exec("create table burst (id integer primary key, body blob)");
      const insert = db.prepare("insert into burst (body) values (?)");
      const walFrames = () => Number((db.prepare("PRAGMA wal_checkpoint(NOOP)").get() as { log: number }).log);
      const row = Buffer.alloc(3000, 7);
      // one commit per row, as the store writer commits per job: a page or two each
      for (let i = 0; i < 2500 && walFrames() < 2500; i++) insert.run(row);
      assert.ok(walFrames() >= 2500, `no commit checkpointed the WAL inline past 1,000 pages (${walFrames()} frames)`);
      let previous = walFrames();
      let checkpointedInline = false;
      for (let i = 0; i < 4 * WAL_AUTOCHECKPOINT_PAGES && !checkpointedInline; i++) {
        insert.run(row);
        const now = walFrames();
        checkpointedInline = now < previous;
        if (!checkpointedInline) previous = now;
      }
      assert.ok(checkpointedInline, "the bound still holds: a commit past it checkpoints and the WAL starts over");
      assert.ok(previous >= WAL_AUTOCHECKPOINT_PAGES, `the WAL grew to its bound first (${previous} frames)`);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
