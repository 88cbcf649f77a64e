/**
 * An R2 value's bytes in and out of the store: a body streamed into a new blob in fixed-size
 * chunks while its digests are computed, and a byte range of an object's segments streamed back
 * one chunk per query.
 *
 * Promises:
 * - memory: a write holds at most one chunk plus the piece that arrived last; a read one chunk;
 * - every chunk but a blob's last is exactly R2_CHUNK_BYTES, so a byte offset names its chunk
 *   without a lookup;
 * - a body that is not exactly the announced size is refused, and the blob it began is released
 *   (swept later) — as is the blob of any write that fails after it.
 */
import { createHash, type Hash } from "node:crypto";
import type { Kysely } from "kysely";
import { beginBlob, BlobState, R2_CHUNK_BYTES, readBlobChunk, setBlobState, writeBlobChunk } from "../../store/repositories/r2-blob-repository.ts";
import type { Database } from "../../store/schema.ts";
import type { R2ByteRange, R2ChecksumName, R2Value } from "../../workers/r2-types.ts";
import { newBlobId, type Segment } from "./r2-object-rows.ts";

const ALGORITHM: Readonly<Record<R2ChecksumName, string>> = { md5: "md5", sha1: "sha1", sha256: "sha256", sha384: "sha384", sha512: "sha512" };

export interface WrittenBlob {
  blobId: string;
  digests: Partial<Record<R2ChecksumName, Buffer>>;
}

/** Stores `value` as a new blob (state "writing": the caller's row takes it), hashing as it goes. */
export async function writeBlob(db: Kysely<Database>, account: string, value: R2Value, algorithms: readonly R2ChecksumName[], now: () => number): Promise<WrittenBlob> {
  const blobId = newBlobId();
  await beginBlob(db, { id: blobId, account, now: now() });
  try {
    const hashes = new Map<R2ChecksumName, Hash>(algorithms.map((name) => [name, createHash(ALGORITHM[name])]));
    let seq = 0;
    let received = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    for await (const piece of value.body) {
      received += piece.byteLength;
      if (received > value.size) throw new Error(`R2 body longer than its announced ${value.size} bytes`);
      for (const hash of hashes.values()) hash.update(piece);
      pending.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
      pendingBytes += piece.byteLength;
      while (pendingBytes >= R2_CHUNK_BYTES) {
        const joined = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
        await writeBlobChunk(db, blobId, seq++, joined.subarray(0, R2_CHUNK_BYTES));
        pending = [joined.subarray(R2_CHUNK_BYTES)];
        pendingBytes = pending[0]!.length;
      }
    }
    if (received !== value.size) throw new Error(`R2 body ended after ${received} of its announced ${value.size} bytes`);
    if (pendingBytes > 0) await writeBlobChunk(db, blobId, seq, Buffer.concat(pending));
    const digests: WrittenBlob["digests"] = {};
    for (const [name, hash] of hashes) digests[name] = hash.digest();
    return { blobId, digests };
  } catch (error) {
    await releaseBlobs(db, [blobId], now());
    throw error;
  }
}

export async function releaseBlobs(db: Kysely<Database>, blobIds: readonly string[], now: number): Promise<void> {
  await setBlobState(db, blobIds, BlobState.released, now);
}

/**
 * The bytes of `range` within the concatenation of `segments`, chunk by chunk. A chunk that is
 * gone (the blob was swept: the read outlived the grace period) fails the stream.
 */
export async function* readSegments(db: Kysely<Database>, segments: readonly Segment[], range: R2ByteRange): AsyncGenerator<Uint8Array> {
  const end = range.offset + range.length;
  let segmentStart = 0;
  for (const [blobId, size] of segments) {
    const segmentEnd = segmentStart + size;
    const from = Math.max(range.offset, segmentStart) - segmentStart;
    const to = Math.min(end, segmentEnd) - segmentStart;
    for (let seq = Math.floor(from / R2_CHUNK_BYTES); from < to && seq * R2_CHUNK_BYTES < to; seq++) {
      const chunk = await readBlobChunk(db, blobId, seq);
      if (chunk === undefined) throw new Error(`R2 blob ${blobId} chunk ${seq} is gone`);
      const chunkStart = seq * R2_CHUNK_BYTES;
      yield chunk.subarray(Math.max(from - chunkStart, 0), Math.min(to - chunkStart, chunk.byteLength));
    }
    segmentStart = segmentEnd;
    if (segmentStart >= end) return;
  }
}
