/**
 * Installation-wide settings (key → text), e.g. the operator token's salted hash. SQL only.
 */
import type { Kysely } from "kysely";
import type { Database } from "../schema.ts";

export async function readSetting(db: Kysely<Database>, key: string): Promise<string | undefined> {
  return (await db.selectFrom("settings").select("value").where("key", "=", key).executeTakeFirst())?.value;
}

export async function writeSetting(db: Kysely<Database>, key: string, value: string): Promise<void> {
  await db.insertInto("settings").values({ key, value }).onConflict((oc) => oc.column("key").doUpdateSet({ value })).execute();
}

/** Inserts unless present; true when this call inserted (several nodes may race on start). */
export async function insertSettingIfAbsent(db: Kysely<Database>, key: string, value: string): Promise<boolean> {
  const result = await db.insertInto("settings").values({ key, value }).onConflict((oc) => oc.column("key").doNothing()).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function deleteSetting(db: Kysely<Database>, key: string): Promise<void> {
  await db.deleteFrom("settings").where("key", "=", key).execute();
}
