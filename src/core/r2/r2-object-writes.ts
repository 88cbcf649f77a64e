/**
 * Storing an R2 object's row once its bytes are in blobs, for put() and for a completed
 * multipart upload alike: inside the caller's transaction, the key's current row is read (and
 * locked on PostgreSQL), `onlyIf` is tested against it, the new row replaces it, the old row's
 * blobs are released and the new one's taken.
 *
 * Promises: a conditional write is atomic across nodes — two writers of one key are applied one
 * after the other, each testing its condition against what the other left (a first write that
 * loses the race to create the key tests again, against the winner's row); the object never
 * refers to a blob that was swept.
 */
import type { Kysely } from "kysely";
import { BlobState, setBlobState } from "../../store/repositories/r2-blob-repository.ts";
import { insertObject, lockObject, replaceObject, type NewR2Object, type R2Location } from "../../store/repositories/r2-object-repository.ts";
import type { Database } from "../../store/schema.ts";
import type { StoreDialect } from "../../store/store.ts";
import { R2Error } from "../../workers/r2-errors.ts";
import type { R2Conditional } from "../../workers/r2-types.ts";
import { conditionHolds } from "./r2-conditional.ts";
import { blobIdsOf } from "./r2-object-rows.ts";

// a key created by another writer between our read and our insert: read again, at most this often
const CREATE_RACE_RETRIES = 3;

export async function storeObject(trx: Kysely<Database>, dialect: StoreDialect, at: R2Location, row: NewR2Object, blobIds: readonly string[], onlyIf: R2Conditional | undefined): Promise<void> {
  const now = Number(row.uploaded);
  for (let attempt = 0; attempt < CREATE_RACE_RETRIES; attempt++) {
    const existing = await lockObject(trx, dialect, at, row.key);
    if (!conditionHolds(onlyIf, existing === undefined ? undefined : { etag: existing.etag, uploaded: Number(existing.uploaded) })) throw new R2Error("preconditionFailed");
    if (existing === undefined) {
      if (!(await insertObject(trx, row))) continue;
    } else {
      await replaceObject(trx, row);
      await setBlobState(trx, blobIdsOf([existing.segments]), BlobState.released, now);
    }
    if ((await setBlobState(trx, blobIds, BlobState.inUse, now)) !== blobIds.length) throw new Error(`R2 object "${row.key}": a blob of its value was swept before the object was stored`);
    return;
  }
  throw new Error(`R2 object "${row.key}": still contended after ${CREATE_RACE_RETRIES} attempts`);
}
