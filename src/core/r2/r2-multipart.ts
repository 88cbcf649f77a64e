/**
 * R2 multipart uploads over the store: create, upload a part, complete, abort — as workerd's
 * R2MultipartUpload calls them, from any node (an upload is rows, not a node's state: parts
 * uploaded through different nodes complete into one object).
 *
 * Promises, as R2 keeps them:
 * - a part is stored before its upload is checked (its bytes stream straight into a blob), and
 *   recorded only if the upload is still in progress — else "no such upload" and the blob is
 *   released; a part number uploaded again replaces the earlier part;
 * - completing takes the listed parts (each named by number and the etag its upload returned),
 *   sorted by number: every part but the last at least 5 MiB, all but the last of one size, the
 *   last no larger; the object's etag is the MD5 of the parts' MD5s followed by "-<count>";
 *   parts uploaded but not listed are released;
 * - the completion, and the upload's end, happen in one transaction with the object's write;
 *   an upload completed or aborted answers "no such upload" to later parts and completions.
 */
import { createHash } from "node:crypto";
import type { Kysely } from "kysely";
import { BlobState, setBlobState } from "../../store/repositories/r2-blob-repository.ts";
import type { R2Location } from "../../store/repositories/r2-object-repository.ts";
import { createUpload, deleteParts, listParts, lockUpload, putPart, setUploadState, UploadState } from "../../store/repositories/r2-upload-repository.ts";
import type { Database } from "../../store/schema.ts";
import type { StoreDialect } from "../../store/store.ts";
import { R2Error } from "../../workers/r2-errors.ts";
import type { R2ObjectInfo, R2PutOptions, R2Value } from "../../workers/r2-types.ts";
import { releaseBlobs, writeBlob } from "./r2-blob-stream.ts";
import { checkCustomMetadata, checkKey, checkPartNumber, checkSize } from "./r2-limits.ts";
import { newUploadId, newVersion, objectInfo, type Segment } from "./r2-object-rows.ts";
import { storeObject } from "./r2-object-writes.ts";

export interface MultipartContext {
  db: Kysely<Database>;
  dialect: StoreDialect;
  at: R2Location;
  now: () => number;
  maxObjectBytes: number;
  minPartBytes: number;
}

export async function createMultipartUpload(ctx: MultipartContext, key: string, options: Pick<R2PutOptions, "httpMetadata" | "customMetadata"> = {}): Promise<{ uploadId: string }> {
  checkKey(key);
  checkCustomMetadata(options.customMetadata);
  const uploadId = newUploadId();
  await createUpload(ctx.db, ctx.at, { uploadId, key, httpMetadata: JSON.stringify(options.httpMetadata ?? {}), customMetadata: JSON.stringify(options.customMetadata ?? {}), now: ctx.now() });
  return { uploadId };
}

export async function uploadPart(ctx: MultipartContext, key: string, uploadId: string, partNumber: number, value: R2Value): Promise<{ etag: string }> {
  checkKey(key);
  checkPartNumber(partNumber);
  checkSize(value.size, ctx.maxObjectBytes);
  const { blobId, digests } = await writeBlob(ctx.db, ctx.at.account, value, ["md5"], ctx.now);
  const md5 = digests.md5!.toString("hex");
  try {
    await ctx.db.transaction().execute(async (trx) => {
      const upload = await lockUpload(trx, ctx.dialect, ctx.at, key, uploadId);
      if (upload?.state !== UploadState.inProgress) throw new R2Error("noSuchUpload");
      const replaced = await putPart(trx, ctx.at, { upload_id: uploadId, part_number: partNumber, blob_id: blobId, size: value.size, etag: md5, md5 });
      await setBlobState(trx, [blobId], BlobState.inUse, ctx.now());
      if (replaced !== undefined) await setBlobState(trx, [replaced], BlobState.released, ctx.now());
    });
  } catch (error) {
    await releaseBlobs(ctx.db, [blobId], ctx.now());
    throw error;
  }
  return { etag: md5 };
}

export async function completeMultipartUpload(ctx: MultipartContext, key: string, uploadId: string, selected: readonly { part: number; etag: string }[]): Promise<R2ObjectInfo> {
  checkKey(key);
  return ctx.db.transaction().execute(async (trx) => {
    const upload = await lockUpload(trx, ctx.dialect, ctx.at, key, uploadId);
    if (upload?.state !== UploadState.inProgress) throw new R2Error("noSuchUpload");
    const numbers = new Set(selected.map((part) => part.part));
    if (numbers.size !== selected.length || selected.length === 0) throw new R2Error("invalidPart");
    const uploaded = new Map((await listParts(trx, ctx.at, uploadId)).map((row) => [row.part_number, row]));
    const parts = selected.map((choice) => {
      const row = uploaded.get(choice.part);
      if (row === undefined || row.etag !== choice.etag) throw new R2Error("invalidPart");
      return { number: row.part_number, blobId: row.blob_id, size: Number(row.size), md5: row.md5 };
    });
    parts.sort((a, b) => a.number - b.number);
    const body = parts.slice(0, -1);
    if (body.some((part) => part.size < ctx.minPartBytes)) throw new R2Error("entityTooSmall");
    const partSize = body[0]?.size;
    if (partSize !== undefined && (body.some((part) => part.size !== partSize) || parts.at(-1)!.size > partSize)) throw new R2Error("badUpload");
    const etag = `${createHash("md5").update(Buffer.concat(parts.map((part) => Buffer.from(part.md5, "hex")))).digest("hex")}-${parts.length}`;
    const segments: Segment[] = parts.map((part) => [part.blobId, part.size]);
    const row = {
      account_id: ctx.at.account,
      bucket: ctx.at.bucket,
      key,
      version: newVersion(),
      size: parts.reduce((sum, part) => sum + part.size, 0),
      etag,
      uploaded: ctx.now(),
      checksums: "{}",
      http_metadata: upload.http_metadata,
      custom_metadata: upload.custom_metadata,
      segments: JSON.stringify(segments),
    };
    await storeObject(trx, ctx.dialect, ctx.at, row, parts.map((part) => part.blobId), undefined);
    const unused = [...uploaded.values()].filter((part) => !numbers.has(part.part_number)).map((part) => part.blob_id);
    await setBlobState(trx, unused, BlobState.released, ctx.now());
    await deleteParts(trx, ctx.at, uploadId);
    await setUploadState(trx, ctx.at, uploadId, UploadState.completed);
    return objectInfo(row);
  });
}

export async function abortMultipartUpload(ctx: MultipartContext, key: string, uploadId: string): Promise<void> {
  checkKey(key);
  await ctx.db.transaction().execute(async (trx) => {
    const upload = await lockUpload(trx, ctx.dialect, ctx.at, key, uploadId);
    if (upload === undefined) throw new R2Error("noSuchUpload");
    // aborting what already ended changes nothing (R2 answers it without an error)
    if (upload.state !== UploadState.inProgress) return;
    const parts = await listParts(trx, ctx.at, uploadId);
    await setBlobState(trx, parts.map((part) => part.blob_id), BlobState.released, ctx.now());
    await deleteParts(trx, ctx.at, uploadId);
    await setUploadState(trx, ctx.at, uploadId, UploadState.aborted);
  });
}
