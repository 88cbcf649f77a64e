/**
 * R2 object metadata (`r2_objects`): (account, bucket, key) → version, size, etag, upload time,
 * checksums, HTTP and custom metadata, and the blobs holding its bytes. SQL only; R2's rules
 * (conditionals, limits, listing with a delimiter) live in core/r2.
 *
 * Promises: every query is scoped to one account and bucket; `lockObject` reads the row a write
 * is about to replace and, on PostgreSQL, locks it until the caller's transaction ends, so two
 * conditional writes to one key are applied one after the other.
 */
import type { Insertable, Kysely, Selectable } from "kysely";
import type { Database, R2ObjectTable } from "../schema.ts";
import type { StoreDialect } from "../store.ts";

export type R2ObjectRow = Selectable<R2ObjectTable>;
export type NewR2Object = Insertable<R2ObjectTable>;

export interface R2Location {
  account: string;
  bucket: string;
}

export function readObject(db: Kysely<Database>, at: R2Location, key: string): Promise<R2ObjectRow | undefined> {
  return db.selectFrom("r2_objects").selectAll().where("account_id", "=", at.account).where("bucket", "=", at.bucket).where("key", "=", key).executeTakeFirst();
}

/** readObject inside a write transaction; PostgreSQL holds the row until the transaction ends. */
export function lockObject(trx: Kysely<Database>, dialect: StoreDialect, at: R2Location, key: string): Promise<R2ObjectRow | undefined> {
  let query = trx.selectFrom("r2_objects").selectAll().where("account_id", "=", at.account).where("bucket", "=", at.bucket).where("key", "=", key);
  if (dialect === "postgres") query = query.forUpdate();
  return query.executeTakeFirst();
}

/** Inserts a new key's row; false when another writer created the key meanwhile (nothing changes). */
export async function insertObject(trx: Kysely<Database>, row: NewR2Object): Promise<boolean> {
  const result = await trx
    .insertInto("r2_objects")
    .values(row)
    .onConflict((oc) => oc.columns(["account_id", "bucket", "key"]).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
}

/** Replaces the row `lockObject` found. */
export async function replaceObject(trx: Kysely<Database>, row: NewR2Object): Promise<void> {
  const { account_id, bucket, key, ...fields } = row;
  await trx.updateTable("r2_objects").set(fields).where("account_id", "=", account_id).where("bucket", "=", bucket).where("key", "=", key).execute();
}

/** Deletes the keys that exist; returns their `segments` (JSON), to release their blobs. */
export async function deleteObjects(trx: Kysely<Database>, at: R2Location, keys: readonly string[]): Promise<string[]> {
  if (keys.length === 0) return [];
  const rows = await trx
    .deleteFrom("r2_objects")
    .where("account_id", "=", at.account)
    .where("bucket", "=", at.bucket)
    .where("key", "in", [...keys])
    .returning("segments")
    .execute();
  return rows.map((row) => row.segments);
}

/** Objects with `from` ≤ key < `to` and key > `after`, in key (byte) order, at most `limit`. */
export function listObjects(db: Kysely<Database>, at: R2Location, range: { from: string; to: string | null; after: string | null; limit: number }): Promise<R2ObjectRow[]> {
  let query = db.selectFrom("r2_objects").selectAll().where("account_id", "=", at.account).where("bucket", "=", at.bucket);
  if (range.from !== "") query = query.where("key", ">=", range.from);
  if (range.to !== null) query = query.where("key", "<", range.to);
  if (range.after !== null) query = query.where("key", ">", range.after);
  return query.orderBy("key").limit(range.limit).execute();
}

/** The greatest key with `from` ≤ key < `to` (the last key of a delimited prefix), if any. */
export async function lastKeyIn(db: Kysely<Database>, at: R2Location, range: { from: string; to: string | null }): Promise<string | undefined> {
  let query = db.selectFrom("r2_objects").select("key").where("account_id", "=", at.account).where("bucket", "=", at.bucket).where("key", ">=", range.from);
  if (range.to !== null) query = query.where("key", "<", range.to);
  const row = await query.orderBy("key", "desc").limit(1).executeTakeFirst();
  return row?.key;
}
