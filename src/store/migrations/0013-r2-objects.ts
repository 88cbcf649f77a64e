/**
 * 0013_r2_objects (issue 9): R2 buckets in the store, so that in cluster mode every node reads
 * the objects any node wrote. An object's metadata is one row; its bytes are blobs, each stored
 * as 256 KiB chunks (as queued message bodies are), so no object is ever one value in memory.
 * A single put is one blob, a multipart object one blob per part, listed in order in the
 * object's `segments`. A blob outlives the row that used it for a grace period (r2_blobs), so a
 * read that began before an overwrite or delete finishes with the bytes it started on.
 */
import { sql, type Kysely } from "kysely";
import type { StoreDialect } from "../store.ts";

// Kysely<any>: a frozen snapshot of the schema as it was then (see migrations.ts)
export async function r2ObjectsUp(db: Kysely<any>, dialect: StoreDialect): Promise<void> {
  const bytes = dialect === "postgres" ? "bytea" : "blob";
  // R2 lists keys in UTF-8 byte order: "C" on PostgreSQL, SQLite's BINARY already is (as kv_entries)
  const key = dialect === "postgres" ? sql`text collate "C"` : "text";
  await db.schema
    .createTable("r2_objects")
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("bucket", "text", (c) => c.notNull())
    .addColumn("key", key, (c) => c.notNull())
    .addColumn("version", "text", (c) => c.notNull())
    .addColumn("size", "bigint", (c) => c.notNull())
    .addColumn("etag", "text", (c) => c.notNull())
    // milliseconds since the epoch, as the R2 binding reports `uploaded`
    .addColumn("uploaded", "bigint", (c) => c.notNull())
    // JSON: { md5?, sha1?, sha256?, sha384?, sha512? } in hex; httpMetadata; customMetadata
    .addColumn("checksums", "text", (c) => c.notNull())
    .addColumn("http_metadata", "text", (c) => c.notNull())
    .addColumn("custom_metadata", "text", (c) => c.notNull())
    // JSON [[blob id, size], …]: the object's bytes, in order
    .addColumn("segments", "text", (c) => c.notNull())
    // point reads, prefix listing and cursors all walk this one index in key order
    .addPrimaryKeyConstraint("r2_objects_pk", ["account_id", "bucket", "key"])
    .execute();
  await db.schema
    .createTable("r2_blobs")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    // 0 being written, 1 in use by an object or an upload's part, 2 released (swept after a grace period)
    .addColumn("state", "integer", (c) => c.notNull())
    .addColumn("changed_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("r2_blobs_sweep_index").on("r2_blobs").columns(["state", "changed_at"]).execute();
  await db.schema
    .createTable("r2_blob_chunks")
    .addColumn("blob_id", "text", (c) => c.notNull())
    .addColumn("seq", "integer", (c) => c.notNull())
    .addColumn("data", bytes, (c) => c.notNull())
    .addPrimaryKeyConstraint("r2_blob_chunks_pk", ["blob_id", "seq"])
    .execute();
  await db.schema
    .createTable("r2_uploads")
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("bucket", "text", (c) => c.notNull())
    .addColumn("upload_id", "text", (c) => c.notNull())
    .addColumn("key", "text", (c) => c.notNull())
    .addColumn("http_metadata", "text", (c) => c.notNull())
    .addColumn("custom_metadata", "text", (c) => c.notNull())
    // 0 in progress, 1 completed, 2 aborted (kept so a late call hears "no such upload")
    .addColumn("state", "integer", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("r2_uploads_pk", ["account_id", "bucket", "upload_id"])
    .execute();
  await db.schema.createIndex("r2_uploads_age_index").on("r2_uploads").columns(["created_at"]).execute();
  await db.schema
    .createTable("r2_upload_parts")
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("bucket", "text", (c) => c.notNull())
    .addColumn("upload_id", "text", (c) => c.notNull())
    .addColumn("part_number", "integer", (c) => c.notNull())
    .addColumn("blob_id", "text", (c) => c.notNull())
    .addColumn("size", "bigint", (c) => c.notNull())
    .addColumn("etag", "text", (c) => c.notNull())
    .addColumn("md5", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("r2_upload_parts_pk", ["account_id", "bucket", "upload_id", "part_number"])
    .execute();
}
