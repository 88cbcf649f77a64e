/**
 * Between `r2_objects` rows and R2ObjectInfo: numbers from bigint columns (pg answers text),
 * JSON columns parsed, the segments list typed; and new versions and ids. Pure but for
 * randomness.
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { R2ObjectRow } from "../../store/repositories/r2-object-repository.ts";
import type { R2ObjectInfo } from "../../workers/r2-types.ts";

/** A blob and its size: an object's bytes are its segments in order. */
export type Segment = readonly [blobId: string, size: number];

export function objectInfo(row: R2ObjectRow, include: { http: boolean; custom: boolean } = { http: true, custom: true }): R2ObjectInfo {
  return {
    key: row.key,
    version: row.version,
    size: Number(row.size),
    etag: row.etag,
    uploaded: Number(row.uploaded),
    httpMetadata: include.http ? (JSON.parse(row.http_metadata) as R2ObjectInfo["httpMetadata"]) : {},
    customMetadata: include.custom ? (JSON.parse(row.custom_metadata) as R2ObjectInfo["customMetadata"]) : {},
    checksums: JSON.parse(row.checksums) as R2ObjectInfo["checksums"],
  };
}

export function segmentsOf(json: string): Segment[] {
  return JSON.parse(json) as Segment[];
}

export function blobIdsOf(segmentLists: readonly string[]): string[] {
  return segmentLists.flatMap((json) => segmentsOf(json).map(([blobId]) => blobId));
}

/** R2 versions are 32 hex digits. */
export function newVersion(): string {
  return randomBytes(16).toString("hex");
}

export function newBlobId(): string {
  return randomUUID();
}

export function newUploadId(): string {
  return randomBytes(64).toString("base64url");
}
