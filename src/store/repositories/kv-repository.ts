/**
 * Workers KV entries (`kv_entries`): (account, namespace, key) → bytes, metadata, expiration.
 * SQL only; Cloudflare's limits, error texts and cursors live in core/kv. An entry whose
 * expiration (epoch seconds) is not after `nowSeconds` is absent to every read here.
 */
import type { Kysely } from "kysely";
import type { Database } from "../schema.ts";

export interface KvRow {
  value: Uint8Array;
  metadata: string | null;
}

export interface KvListRow {
  key: string;
  metadata: string | null;
  expiration: number | string | null;
}

export function readKvEntry(db: Kysely<Database>, account: string, namespace: string, key: string, nowSeconds: number): Promise<KvRow | undefined> {
  return db
    .selectFrom("kv_entries")
    .select(["value", "metadata"])
    .where("account_id", "=", account)
    .where("namespace", "=", namespace)
    .where("key", "=", key)
    .where((eb) => eb.or([eb("expiration", "is", null), eb("expiration", ">", nowSeconds)]))
    .executeTakeFirst();
}

export async function writeKvEntry(db: Kysely<Database>, row: { account: string; namespace: string; key: string; value: Uint8Array; metadata: string | null; expiration: number | null }): Promise<void> {
  const { value, metadata, expiration } = row;
  await db
    .insertInto("kv_entries")
    .values({ account_id: row.account, namespace: row.namespace, key: row.key, value, metadata, expiration })
    .onConflict((oc) => oc.columns(["account_id", "namespace", "key"]).doUpdateSet({ value, metadata, expiration }))
    .execute();
}

/** True when an entry (live or expired) was removed. */
export async function deleteKvEntry(db: Kysely<Database>, account: string, namespace: string, key: string): Promise<boolean> {
  const { numDeletedRows } = await db.deleteFrom("kv_entries").where("account_id", "=", account).where("namespace", "=", namespace).where("key", "=", key).executeTakeFirst();
  return numDeletedRows > 0n;
}

/**
 * Live keys in byte order, `from` ≤ key < `to` (a prefix's range, so the primary key's index
 * does the work) and key > `after` (the cursor), at most `limit` rows.
 */
export function listKvKeys(db: Kysely<Database>, account: string, namespace: string, range: { from?: string; to?: string | null; after?: string | null; limit: number; nowSeconds: number }): Promise<KvListRow[]> {
  let query = db
    .selectFrom("kv_entries")
    .select(["key", "metadata", "expiration"])
    .where("account_id", "=", account)
    .where("namespace", "=", namespace)
    .where((eb) => eb.or([eb("expiration", "is", null), eb("expiration", ">", range.nowSeconds)]));
  if (range.from !== undefined && range.from !== "") query = query.where("key", ">=", range.from);
  if (range.to !== undefined && range.to !== null) query = query.where("key", "<", range.to);
  if (range.after !== undefined && range.after !== null) query = query.where("key", ">", range.after);
  return query.orderBy("key").limit(range.limit).execute();
}

/** The account's namespaces that hold at least one live entry, with their entry counts. */
export async function listKvNamespaces(db: Kysely<Database>, account: string, nowSeconds: number): Promise<{ namespace: string; keys: number }[]> {
  const rows = await db
    .selectFrom("kv_entries")
    .select((eb) => ["namespace", eb.fn.countAll<number | string>().as("keys")])
    .where("account_id", "=", account)
    .where((eb) => eb.or([eb("expiration", "is", null), eb("expiration", ">", nowSeconds)]))
    .groupBy("namespace")
    .orderBy("namespace")
    .execute();
  return rows.map((row) => ({ namespace: row.namespace, keys: Number(row.keys) }));
}

/** Deletes entries expired at `nowSeconds` (all accounts); returns how many. */
export async function purgeExpiredKvEntries(db: Kysely<Database>, nowSeconds: number): Promise<number> {
  const { numDeletedRows } = await db.deleteFrom("kv_entries").where("expiration", "<=", nowSeconds).executeTakeFirst();
  return Number(numDeletedRows);
}
