/**
 * Sealed worker secrets (`worker_secrets`): (account, worker, key) → ciphertext. SQL only;
 * sealing and opening happen in core/workers, so a plain value never reaches this module.
 */
import type { Kysely } from "kysely";
import type { Database } from "../schema.ts";

export interface SecretRow {
  key: string;
  ciphertext: string;
}

/** A worker's secrets, by key. */
export function listSecrets(db: Kysely<Database>, account: string, worker: string): Promise<SecretRow[]> {
  return db.selectFrom("worker_secrets").select(["key", "ciphertext"]).where("account_id", "=", account).where("worker", "=", worker).orderBy("key").execute();
}

export async function secretExists(db: Kysely<Database>, account: string, worker: string, key: string): Promise<boolean> {
  return (await db.selectFrom("worker_secrets").select("key").where("account_id", "=", account).where("worker", "=", worker).where("key", "=", key).executeTakeFirst()) !== undefined;
}

export async function upsertSecret(db: Kysely<Database>, row: { account_id: string; worker: string; key: string; ciphertext: string; modified_at: string }): Promise<void> {
  await db
    .insertInto("worker_secrets")
    .values(row)
    .onConflict((oc) => oc.columns(["account_id", "worker", "key"]).doUpdateSet({ ciphertext: row.ciphertext, modified_at: row.modified_at }))
    .execute();
}

/** True when a row was deleted. */
export async function deleteSecret(db: Kysely<Database>, account: string, worker: string, key: string): Promise<boolean> {
  const { numDeletedRows } = await db.deleteFrom("worker_secrets").where("account_id", "=", account).where("worker", "=", worker).where("key", "=", key).executeTakeFirst();
  return numDeletedRows > 0n;
}

export async function deleteWorkerSecrets(db: Kysely<Database>, account: string, worker: string): Promise<void> {
  await db.deleteFrom("worker_secrets").where("account_id", "=", account).where("worker", "=", worker).execute();
}
