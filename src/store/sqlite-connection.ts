/**
 * Opens one node:sqlite connection to a mailroute SQLite file with the pragmas every connection
 * needs, whichever thread holds it: the Kysely dialect's (node-sqlite-dialect.ts) and the
 * store writer thread's (sqlite-writer-thread.ts). No Kysely here, so the writer thread loads
 * only node:sqlite.
 */
import { DatabaseSync } from "node:sqlite";
import { WAL_AUTOCHECKPOINT_PAGES } from "./quiet-checkpoint.ts";

/** How long a connection waits for another connection's write lock before failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5000;

export function openDatabaseSync(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  try {
    // busy_timeout first: switching to WAL needs a lock another process may hold.
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // WAL: the server keeps reading while a CLI process writes, and vice versa.
    db.exec("PRAGMA journal_mode = WAL");
    // NORMAL is durable across process crashes in WAL mode; only an OS crash or power
    // loss can lose the last commits, never corrupt the file.
    db.exec("PRAGMA synchronous = NORMAL");
    // SQLite leaves foreign keys off per connection unless asked: cascades depend on it.
    db.exec("PRAGMA foreign_keys = ON");
    // the WAL's bound: a commit that takes it past this checkpoints inline (quiet-checkpoint.ts)
    db.exec(`PRAGMA wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
  } catch (error) {
    db.close();
    throw new Error(`sqlite database "${path}": cannot configure connection`, { cause: error });
  }
  return db;
}
