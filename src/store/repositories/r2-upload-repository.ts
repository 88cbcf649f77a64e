/**
 * R2 multipart uploads (`r2_uploads`, `r2_upload_parts`): an upload's key and metadata, its
 * state, and the parts uploaded so far with the blob holding each. SQL only; the rules a
 * completion must satisfy live in core/r2.
 *
 * Promises: every query is scoped to one account and bucket; `lockUpload` reads an upload and,
 * on PostgreSQL, locks it until the caller's transaction ends, so parts uploaded through
 * different nodes and the completion that reads them are applied one after the other.
 */
import type { Insertable, Kysely, Selectable } from "kysely";
import type { Database, R2UploadPartTable, R2UploadTable } from "../schema.ts";
import type { StoreDialect } from "../store.ts";
import type { R2Location } from "./r2-object-repository.ts";

export type R2UploadRow = Selectable<R2UploadTable>;
export type R2UploadPartRow = Selectable<R2UploadPartTable>;

export const UploadState = Object.freeze({ inProgress: 0, completed: 1, aborted: 2 });

export async function createUpload(db: Kysely<Database>, at: R2Location, upload: { uploadId: string; key: string; httpMetadata: string; customMetadata: string; now: number }): Promise<void> {
  await db
    .insertInto("r2_uploads")
    .values({
      account_id: at.account,
      bucket: at.bucket,
      upload_id: upload.uploadId,
      key: upload.key,
      http_metadata: upload.httpMetadata,
      custom_metadata: upload.customMetadata,
      state: UploadState.inProgress,
      created_at: upload.now,
    })
    .execute();
}

/** The upload of `key` named `uploadId`, locked on PostgreSQL until the transaction ends. */
export function lockUpload(trx: Kysely<Database>, dialect: StoreDialect, at: R2Location, key: string, uploadId: string): Promise<R2UploadRow | undefined> {
  let query = trx
    .selectFrom("r2_uploads")
    .selectAll()
    .where("account_id", "=", at.account)
    .where("bucket", "=", at.bucket)
    .where("upload_id", "=", uploadId)
    .where("key", "=", key);
  if (dialect === "postgres") query = query.forUpdate();
  return query.executeTakeFirst();
}

export async function setUploadState(trx: Kysely<Database>, at: R2Location, uploadId: string, state: number): Promise<void> {
  await trx.updateTable("r2_uploads").set({ state }).where("account_id", "=", at.account).where("bucket", "=", at.bucket).where("upload_id", "=", uploadId).execute();
}

/** Records a part; returns the blob of the part it replaced (same number, uploaded again), if any. */
export async function putPart(trx: Kysely<Database>, at: R2Location, part: Omit<Insertable<R2UploadPartTable>, "account_id" | "bucket">): Promise<string | undefined> {
  const previous = await trx
    .deleteFrom("r2_upload_parts")
    .where("account_id", "=", at.account)
    .where("bucket", "=", at.bucket)
    .where("upload_id", "=", part.upload_id)
    .where("part_number", "=", part.part_number)
    .returning("blob_id")
    .executeTakeFirst();
  await trx.insertInto("r2_upload_parts").values({ account_id: at.account, bucket: at.bucket, ...part }).execute();
  return previous?.blob_id;
}

export function listParts(trx: Kysely<Database>, at: R2Location, uploadId: string): Promise<R2UploadPartRow[]> {
  return trx.selectFrom("r2_upload_parts").selectAll().where("account_id", "=", at.account).where("bucket", "=", at.bucket).where("upload_id", "=", uploadId).orderBy("part_number").execute();
}

/** Forgets every part of the upload (their blobs are the caller's to release or keep). */
export async function deleteParts(trx: Kysely<Database>, at: R2Location, uploadId: string): Promise<void> {
  await trx.deleteFrom("r2_upload_parts").where("account_id", "=", at.account).where("bucket", "=", at.bucket).where("upload_id", "=", uploadId).execute();
}

/** Uploads created before `before` (every account), oldest first: the ones the sweep ends. */
export function staleUploads(db: Kysely<Database>, before: number, limit: number): Promise<R2UploadRow[]> {
  return db.selectFrom("r2_uploads").selectAll().where("created_at", "<", before).orderBy("created_at").limit(limit).execute();
}

/** Removes a finished or abandoned upload's row and parts; returns its parts' blobs. */
export async function dropUpload(trx: Kysely<Database>, at: R2Location, uploadId: string): Promise<string[]> {
  const parts = await trx.deleteFrom("r2_upload_parts").where("account_id", "=", at.account).where("bucket", "=", at.bucket).where("upload_id", "=", uploadId).returning("blob_id").execute();
  await trx.deleteFrom("r2_uploads").where("account_id", "=", at.account).where("bucket", "=", at.bucket).where("upload_id", "=", uploadId).execute();
  return parts.map((part) => part.blob_id);
}
