/**
 * `mailroute start` stops cleanly on a SIGTERM that arrives while it is still starting
 * (src/cli/start-command.ts): the service answers SMTP before its start has finished, and a
 * supervisor may stop it then. The start is held at a known point — the store's write lock,
 * taken by this test before the service asks for it — so the signal lands inside the start
 * every time; before the fix it found no handler and the process died by the signal.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { openStore } from "../../src/store/open-store.ts";
import { freePort } from "../support/free-port.ts";
import { MailrouteProcess } from "../support/mailroute-process.ts";

/** True once process `pid` has `file` open. */
function hasOpen(pid: number, file: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === file;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

describe("mailroute start, signalled while starting", () => {
  let dir: string;
  let dbFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "mailroute-start-signal-"));
    // a store that exists already: the start's first write is the migrator's lock, which waits for ours
    const store = await openStore({ dataDir: join(dir, "data") });
    dbFile = store.sqliteFile!;
    await store.close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("finishes starting, prints no banner, and stops cleanly (exit 0), rather than dying by the signal", async () => {
    const lock = new DatabaseSync(dbFile);
    lock.exec("PRAGMA busy_timeout = 5000");
    lock.exec("BEGIN IMMEDIATE");
    const service = new MailrouteProcess({ "data-dir": join(dir, "data"), "http-host": "127.0.0.1", "http-port": String(await freePort()), hostname: "mx.mailroute.test" }, await freePort());
    try {
      service.launch();
      const pid = service.pid!;
      // it has the store open: its start is under way, waiting for the lock held here
      for (let round = 0; round < 400 && !hasOpen(pid, dbFile); round++) await sleep(25);
      assert.ok(hasOpen(pid, dbFile), `the service opened its store (${service.stderr.trim()})`);
      assert.ok(service.signal("SIGTERM"));
      await sleep(100);
      lock.exec("COMMIT");
      await service.exited;
      assert.deepEqual(service.exitStatus, { code: 0, signal: null }, service.stderr.trim());
      assert.ok(!service.printed.some((line) => line.includes("mailroute is receiving mail")), "no banner for a service that was asked to stop");
    } finally {
      if (lock.isTransaction) lock.exec("ROLLBACK");
      lock.close();
      service.killNow();
      await service.stop();
    }
  });
});
