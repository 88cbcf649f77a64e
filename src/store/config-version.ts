/**
 * The routing configuration's version counter: one row, bumped by whoever changes routing
 * config (API, CLI, `apply`), polled by the running server, which reloads when it moves.
 *
 * Promises: each bump returns a distinct, increasing number even when several processes
 * bump at once (the increment happens in the database, never read-modify-write in JS).
 */
import type { Kysely } from "kysely";
import type { Database } from "./schema.ts";

/**
 * Increments the version and returns the new value. Given a transaction, it bumps inside
 * it, so a config change and its bump commit (or roll back) together.
 */
export async function bumpConfigVersion(db: Kysely<Database>): Promise<number> {
  if (db.isTransaction) return bumpIn(db);
  return db.transaction().execute(bumpIn);
}

async function bumpIn(trx: Kysely<Database>): Promise<number> {
  // The UPDATE takes the row (PostgreSQL) or database (SQLite) write lock first, so the
  // read below sees this transaction's own increment and no one else's.
  const { numUpdatedRows } = await trx
    .updateTable("config_version")
    .set((eb) => ({ version: eb("version", "+", 1) }))
    .where("id", "=", 1)
    .executeTakeFirstOrThrow();
  if (numUpdatedRows !== 1n) throw new Error("config_version: row id=1 is missing (migrations not applied?)");
  return readConfigVersion(trx);
}

export async function readConfigVersion(db: Kysely<Database>): Promise<number> {
  const row = await db.selectFrom("config_version").select("version").where("id", "=", 1).executeTakeFirst();
  if (row === undefined) throw new Error("config_version: row id=1 is missing (migrations not applied?)");
  return row.version;
}
