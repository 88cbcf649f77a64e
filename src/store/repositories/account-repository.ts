/**
 * Accounts: the tenants of an installation. Zones, destination addresses, tokens, workers,
 * KV and events all hang off one. SQL only; validation and audit live in core/accounts.
 */
import type { Insertable, Kysely, Selectable } from "kysely";
import type { AccountTable, Database } from "../schema.ts";

export type AccountRow = Selectable<AccountTable>;

export function listAccounts(db: Kysely<Database>, page: { limit: number; offset: number }): Promise<AccountRow[]> {
  return db.selectFrom("accounts").selectAll().orderBy("created_at").orderBy("id").limit(page.limit).offset(page.offset).execute();
}

export async function countAccounts(db: Kysely<Database>): Promise<number> {
  const row = await db.selectFrom("accounts").select((eb) => eb.fn.countAll<number | string>().as("n")).executeTakeFirstOrThrow();
  return Number(row.n);
}

export function findAccount(db: Kysely<Database>, id: string): Promise<AccountRow | undefined> {
  return db.selectFrom("accounts").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function insertAccount(db: Kysely<Database>, row: Insertable<AccountTable>): Promise<void> {
  await db.insertInto("accounts").values(row).execute();
}

export async function renameAccount(db: Kysely<Database>, id: string, name: string, modifiedAt: string): Promise<void> {
  await db.updateTable("accounts").set({ name, modified_at: modifiedAt }).where("id", "=", id).execute();
}

/**
 * Deletes an account and everything it owns, children first (SQLite enforces foreign keys
 * only per connection setting, so cascades are not relied upon).
 */
export async function deleteAccountCascade(db: Kysely<Database>, id: string): Promise<void> {
  const zoneIds = db.selectFrom("zones").select("id").where("account_id", "=", id);
  await db.deleteFrom("rules").where("zone_id", "in", zoneIds).execute();
  await db.deleteFrom("catch_alls").where("zone_id", "in", zoneIds).execute();
  await db.deleteFrom("zones").where("account_id", "=", id).execute();
  await db.deleteFrom("address_verifications").where("account_id", "=", id).execute();
  await db.deleteFrom("destination_addresses").where("account_id", "=", id).execute();
  await db.deleteFrom("api_tokens").where("account_id", "=", id).execute();
  await db.deleteFrom("worker_secrets").where("account_id", "=", id).execute();
  await db.deleteFrom("worker_logs").where("account_id", "=", id).execute();
  await db.deleteFrom("workers").where("account_id", "=", id).execute();
  await db.deleteFrom("kv_entries").where("account_id", "=", id).execute();
  await db.deleteFrom("accounts").where("id", "=", id).execute();
}
