/**
 * Deployed Email Workers (`workers`): one row per (account, lower-case name) with the bundle,
 * its bindings as JSON and the version hash. SQL only; core/workers validates, versions and
 * audits, and its runtime reader loads definitions for running workers.
 */
import type { Insertable, Kysely, Selectable, Updateable } from "kysely";
import type { Database, WorkerTable } from "../schema.ts";

export type WorkerRow = Selectable<WorkerTable>;

/** Every column but the bundle, plus the bundle's length: what a listing needs. */
export type WorkerSummaryRow = Omit<WorkerRow, "bundle" | "account_id" | "modules"> & { bundle_size: number | string };

export function findWorker(db: Kysely<Database>, account: string, name: string): Promise<WorkerRow | undefined> {
  return db.selectFrom("workers").selectAll().where("account_id", "=", account).where("name", "=", name).executeTakeFirst();
}

export function findWorkerSummary(db: Kysely<Database>, account: string, name: string): Promise<WorkerSummaryRow | undefined> {
  return db
    .selectFrom("workers")
    .select((eb) => ["name", "version", "compatibility_date", "compatibility_flags", "vars", "kv", "send_email", "platform_bindings", "triggers", "created_at", "modified_at", eb.fn<number>("length", ["bundle"]).as("bundle_size")])
    .where("account_id", "=", account)
    .where("name", "=", name)
    .executeTakeFirst();
}

export async function listWorkerNames(db: Kysely<Database>, account: string): Promise<string[]> {
  return (await db.selectFrom("workers").select("name").where("account_id", "=", account).orderBy("name").execute()).map((row) => row.name);
}

/** Name and JSON triggers of every worker of the account, by name. */
export function listWorkerTriggers(db: Kysely<Database>, account: string): Promise<{ name: string; triggers: string }[]> {
  return db.selectFrom("workers").select(["name", "triggers"]).where("account_id", "=", account).orderBy("name").execute();
}

/** (account, name, version) of every worker, of one account or all. */
export function listWorkerVersions(db: Kysely<Database>, account?: string): Promise<{ account_id: string; name: string; version: string }[]> {
  let query = db.selectFrom("workers").select(["account_id", "name", "version"]);
  if (account !== undefined) query = query.where("account_id", "=", account);
  return query.orderBy("account_id").orderBy("name").execute();
}

export async function insertWorker(db: Kysely<Database>, row: Insertable<WorkerTable>): Promise<void> {
  await db.insertInto("workers").values(row).execute();
}

export async function updateWorker(db: Kysely<Database>, account: string, name: string, patch: Updateable<WorkerTable>): Promise<void> {
  await db.updateTable("workers").set(patch).where("account_id", "=", account).where("name", "=", name).execute();
}

export async function deleteWorker(db: Kysely<Database>, account: string, name: string): Promise<void> {
  await db.deleteFrom("workers").where("account_id", "=", account).where("name", "=", name).execute();
}
