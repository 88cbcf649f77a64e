/**
 * API tokens. The value is never stored: only a per-token salt and SHA-256(salt ‖ secret).
 * SQL only; core/tokens creates values, checks policies and audits.
 */
import type { Insertable, Kysely, Selectable, Updateable } from "kysely";
import type { ApiTokenTable, Database } from "../schema.ts";

export type TokenRow = Selectable<ApiTokenTable>;

export function listTokens(db: Kysely<Database>, account: string, page?: { limit: number; offset: number }): Promise<TokenRow[]> {
  let query = db.selectFrom("api_tokens").selectAll().where("account_id", "=", account).orderBy("issued_on").orderBy("id");
  if (page !== undefined) query = query.limit(page.limit).offset(page.offset);
  return query.execute();
}

export async function countTokens(db: Kysely<Database>, account: string): Promise<number> {
  return Number((await db.selectFrom("api_tokens").select((eb) => eb.fn.countAll<number | string>().as("n")).where("account_id", "=", account).executeTakeFirstOrThrow()).n);
}

/** By id alone: authentication finds the token before it knows the account. */
export function findTokenById(db: Kysely<Database>, id: string): Promise<TokenRow | undefined> {
  return db.selectFrom("api_tokens").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function insertToken(db: Kysely<Database>, row: Insertable<ApiTokenTable>): Promise<void> {
  await db.insertInto("api_tokens").values(row).execute();
}

export async function updateToken(db: Kysely<Database>, id: string, patch: Updateable<ApiTokenTable>): Promise<void> {
  await db.updateTable("api_tokens").set(patch).where("id", "=", id).execute();
}

export async function deleteToken(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom("api_tokens").where("id", "=", id).execute();
}
