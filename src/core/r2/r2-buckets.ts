/**
 * R2 buckets in mailroute's store: the R2Buckets a worker's R2 binding is served from when the
 * store is shared by several nodes (cluster mode), so an object one node wrote is read by all.
 * Metadata is a row per object; bytes are blobs of 256 KiB chunks (r2-blob-stream.ts).
 *
 * Promises:
 * - one account's buckets only: every query carries the account, so account B's worker never
 *   reaches account A's bucket of the same name;
 * - R2's semantics and limits (r2-limits.ts): keys ≤ 1024 bytes, md5 etags (a multipart
 *   object's "<md5 of md5s>-<n>"), the sha-1/256/384/512 a worker supplies checked and kept,
 *   `onlyIf` on get and put, list with prefix / delimiter / cursor / startAfter / include;
 * - a get that began before an overwrite or delete reads the bytes it found (replaced blobs
 *   stay for RELEASED_GRACE_MS); `sweepR2` removes what nothing refers to any more, and
 *   uploads left unfinished for a week (as R2 aborts them).
 */
import type { Kysely } from "kysely";
import { sweepBlobs } from "../../store/repositories/r2-blob-repository.ts";
import { deleteObjects, readObject, type R2Location } from "../../store/repositories/r2-object-repository.ts";
import { dropUpload, staleUploads } from "../../store/repositories/r2-upload-repository.ts";
import type { Database } from "../../store/schema.ts";
import type { StoreDialect } from "../../store/store.ts";
import { R2Error } from "../../workers/r2-errors.ts";
import type { R2Buckets, R2ChecksumName, R2PutOptions } from "../../workers/r2-types.ts";
import { conditionHolds } from "./r2-conditional.ts";
import { checkCustomMetadata, checkKey, checkSize, R2_LIMITS } from "./r2-limits.ts";
import { listBucket } from "./r2-listing.ts";
import { abortMultipartUpload, completeMultipartUpload, createMultipartUpload, uploadPart, type MultipartContext } from "./r2-multipart.ts";
import { blobIdsOf, newVersion, objectInfo, segmentsOf } from "./r2-object-rows.ts";
import { readSegments, releaseBlobs, writeBlob } from "./r2-blob-stream.ts";
import { storeObject } from "./r2-object-writes.ts";

/** How long a replaced or deleted object's bytes stay readable by reads already under way. */
export const RELEASED_GRACE_MS = 60 * 60_000;
/** A blob no object ever took after this long was a write that died. */
export const ABANDONED_WRITE_MS = 24 * 60 * 60_000;
/** R2 aborts multipart uploads left incomplete for 7 days. */
export const UPLOAD_LIFETIME_MS = 7 * 24 * 60 * 60_000;

export interface R2BucketsOptions {
  now?: () => number;
  /** A single put's or part's largest size (default R2's 5 GiB − 5 MiB). */
  maxObjectBytes?: number;
  /** Multipart parts but the last are at least this (default R2's 5 MiB). */
  minPartBytes?: number;
}

export function createR2Buckets(store: { db: Kysely<Database>; dialect: StoreDialect }, account: string, options: R2BucketsOptions = {}): R2Buckets {
  const { db, dialect } = store;
  const now = options.now ?? Date.now;
  const maxObjectBytes = options.maxObjectBytes ?? R2_LIMITS.maxObjectBytes;
  const at = (bucket: string): R2Location => {
    // not a worker-facing error: bindings name their bucket at deploy
    if (typeof bucket !== "string" || bucket === "") throw new Error("R2 bucket name must be a non-empty string");
    return { account, bucket };
  };
  const multipart = (bucket: string): MultipartContext => ({ db, dialect, at: at(bucket), now, maxObjectBytes, minPartBytes: options.minPartBytes ?? R2_LIMITS.minPartBytes });

  return Object.freeze({
    head: async function r2Head(bucket: string, key: string) {
      checkKey(key);
      const row = await readObject(db, at(bucket), key);
      return row === undefined ? null : objectInfo(row);
    },

    get: async function r2Get(bucket: string, key: string, onlyIf?: R2PutOptions["onlyIf"]) {
      checkKey(key);
      const row = await readObject(db, at(bucket), key);
      if (row === undefined) return null;
      const object = objectInfo(row);
      if (!conditionHolds(onlyIf, object)) throw new R2Error("preconditionFailed", { object });
      const segments = segmentsOf(row.segments);
      return { object, read: (range) => readSegments(db, segments, range) };
    },

    put: async function r2Put(bucket: string, key: string, value, putOptions: R2PutOptions = {}) {
      const location = at(bucket);
      checkKey(key);
      checkSize(value.size, maxObjectBytes);
      checkCustomMetadata(putOptions.customMetadata);
      const supplied = putOptions.checksums ?? {};
      const algorithms = ["md5", ...Object.keys(supplied).filter((name) => name !== "md5")] as R2ChecksumName[];
      const { blobId, digests } = await writeBlob(db, account, value, algorithms, now);
      try {
        const checksums: Partial<Record<R2ChecksumName, string>> = { md5: digests.md5!.toString("hex") };
        for (const name of algorithms) {
          const expected = supplied[name];
          if (expected !== undefined && !expected.equals(digests[name]!)) throw new R2Error("badDigest", { message: badDigestText(name, expected, digests[name]!) });
          if (name !== "md5") checksums[name] = digests[name]!.toString("hex");
        }
        const row = {
          account_id: account,
          bucket: location.bucket,
          key,
          version: newVersion(),
          size: value.size,
          etag: checksums.md5!,
          uploaded: now(),
          checksums: JSON.stringify(checksums),
          http_metadata: JSON.stringify(putOptions.httpMetadata ?? {}),
          custom_metadata: JSON.stringify(putOptions.customMetadata ?? {}),
          segments: JSON.stringify([[blobId, value.size]]),
        };
        await db.transaction().execute((trx) => storeObject(trx, dialect, location, row, [blobId], putOptions.onlyIf));
        return objectInfo(row);
      } catch (error) {
        await releaseBlobs(db, [blobId], now());
        throw error;
      }
    },

    delete: async function r2Delete(bucket: string, keys: readonly string[]) {
      const location = at(bucket);
      for (const key of keys) checkKey(key);
      await db.transaction().execute(async (trx) => {
        const removed = await deleteObjects(trx, location, keys);
        await releaseBlobs(trx, blobIdsOf(removed), now());
      });
    },

    list: (bucket: string, listOptions?) => listBucket(db, at(bucket), listOptions),
    createMultipartUpload: (bucket: string, key: string, uploadOptions?) => createMultipartUpload(multipart(bucket), key, uploadOptions),
    uploadPart: (bucket: string, key: string, uploadId: string, partNumber: number, value) => uploadPart(multipart(bucket), key, uploadId, partNumber, value),
    completeMultipartUpload: (bucket: string, key: string, uploadId: string, parts) => completeMultipartUpload(multipart(bucket), key, uploadId, parts),
    abortMultipartUpload: (bucket: string, key: string, uploadId: string) => abortMultipartUpload(multipart(bucket), key, uploadId),
  } satisfies R2Buckets);
}

// R2's own wording, naming the algorithm and both digests
function badDigestText(name: R2ChecksumName, provided: Buffer, actual: Buffer): string {
  const algorithm = { md5: "MD5", sha1: "SHA-1", sha256: "SHA-256", sha384: "SHA-384", sha512: "SHA-512" }[name];
  return [`The ${algorithm} checksum you specified did not match what we received.`, `You provided a ${algorithm} checksum with value: ${provided.toString("hex")}`, `Actual ${algorithm} was: ${actual.toString("hex")}`].join("\n");
}

/**
 * Housekeeping (all accounts): ends uploads older than a week, then deletes blobs released
 * more than RELEASED_GRACE_MS ago and writes abandoned for ABANDONED_WRITE_MS. Returns how many
 * blobs went. Bounded per call: a backlog is worked off over the next runs.
 */
export async function sweepR2(db: Kysely<Database>, now: Date): Promise<number> {
  const at = now.getTime();
  for (const upload of await staleUploads(db, at - UPLOAD_LIFETIME_MS, 1000)) {
    await db.transaction().execute(async (trx) => {
      const blobs = await dropUpload(trx, { account: upload.account_id, bucket: upload.bucket }, upload.upload_id);
      await releaseBlobs(trx, blobs, at);
    });
  }
  let swept = 0;
  for (let round = 0; round < 10; round++) {
    const count = await sweepBlobs(db, { releasedBefore: at - RELEASED_GRACE_MS, abandonedBefore: at - ABANDONED_WRITE_MS, limit: 500 });
    swept += count;
    if (count < 500) break;
  }
  return swept;
}


/**
 * Where workers' R2 bindings keep their objects: in the store when it is PostgreSQL, shared by
 * every node of a cluster; undefined on SQLite, where one node runs alone and miniflare's own R2
 * keeps them as files in the data directory (wrangler's --persist-to layout, outside the
 * database file, so mailroute.sqlite stays small and objects written before stay where they are).
 */
export function storeR2(store: { db: Kysely<Database>; dialect: StoreDialect }): ((account: string) => R2Buckets) | undefined {
  return store.dialect === "postgres" ? (account) => createR2Buckets(store, account) : undefined;
}
