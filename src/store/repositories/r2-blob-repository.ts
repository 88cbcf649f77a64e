/**
 * The bytes of R2 objects and upload parts (`r2_blobs`, `r2_blob_chunks`): a blob is a list of
 * chunks, each one row. SQL only; what a blob belongs to is the object and upload
 * repositories' business.
 *
 * Promises:
 * - chunks are written and read one row per statement: a large blob is never one value in
 *   memory, and writing one holds no transaction (a long upload must not hold SQLite's write
 *   lock, nor a PostgreSQL transaction, while its bytes arrive);
 * - a blob's state says who may delete it: `writing` until an object or part takes it (`inUse`),
 *   `released` once nothing refers to it; `sweepBlobs` deletes released blobs and writes that
 *   never finished, each only after its grace period, so a read in progress keeps its bytes.
 */
import type { Kysely } from "kysely";
import type { Database } from "../schema.ts";

export const R2_CHUNK_BYTES = 256 * 1024;

export const BlobState = Object.freeze({ writing: 0, inUse: 1, released: 2 });

export async function beginBlob(db: Kysely<Database>, blob: { id: string; account: string; now: number }): Promise<void> {
  await db.insertInto("r2_blobs").values({ id: blob.id, account_id: blob.account, state: BlobState.writing, changed_at: blob.now }).execute();
}

export async function writeBlobChunk(db: Kysely<Database>, blobId: string, seq: number, data: Uint8Array): Promise<void> {
  await db.insertInto("r2_blob_chunks").values({ blob_id: blobId, seq, data }).execute();
}

/** One chunk's bytes, or undefined when the blob (or that chunk) is gone. */
export async function readBlobChunk(db: Kysely<Database>, blobId: string, seq: number): Promise<Uint8Array | undefined> {
  const row = await db.selectFrom("r2_blob_chunks").select("data").where("blob_id", "=", blobId).where("seq", "=", seq).executeTakeFirst();
  return row?.data;
}

/**
 * Moves blobs to `state` (in the caller's transaction, beside the row that takes or drops them);
 * returns how many moved, so a caller taking blobs can tell that one was swept meanwhile.
 */
export async function setBlobState(db: Kysely<Database>, ids: readonly string[], state: number, now: number): Promise<number> {
  if (ids.length === 0) return 0;
  const { numUpdatedRows } = await db.updateTable("r2_blobs").set({ state, changed_at: now }).where("id", "in", [...ids]).executeTakeFirst();
  return Number(numUpdatedRows);
}

/**
 * Deletes blobs released before `releasedBefore` and writes begun before `abandonedBefore` that
 * no row ever took (the writer died, or its put failed), at most `limit`; returns how many. The
 * condition is checked again by the delete itself, so a blob taken meanwhile stays.
 */
export async function sweepBlobs(db: Kysely<Database>, cutoffs: { releasedBefore: number; abandonedBefore: number; limit: number }): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const candidates = trx
      .selectFrom("r2_blobs")
      .select("id")
      .where((eb) =>
        eb.or([
          eb.and([eb("state", "=", BlobState.released), eb("changed_at", "<", cutoffs.releasedBefore)]),
          eb.and([eb("state", "=", BlobState.writing), eb("changed_at", "<", cutoffs.abandonedBefore)]),
        ]),
      )
      .limit(cutoffs.limit);
    const deleted = await trx
      .deleteFrom("r2_blobs")
      .where("id", "in", candidates)
      .where((eb) => eb.or([eb("state", "=", BlobState.released), eb("state", "=", BlobState.writing)]))
      .returning("id")
      .execute();
    const ids = deleted.map((row) => row.id);
    if (ids.length > 0) await trx.deleteFrom("r2_blob_chunks").where("blob_id", "in", ids).execute();
    return ids.length;
  });
}
