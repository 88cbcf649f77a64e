/**
 * The contract between the Email Worker runtime and the R2 store it serves workers' R2 bindings
 * from (core/r2 implements it over the database): one account's buckets, with R2's operations
 * as workerd's R2 binding asks for them (r2-wire.ts decodes its requests into these calls).
 *
 * Promises an implementation keeps: a bucket is named by the account's binding and reached only
 * through that account's R2Buckets; refusals are R2Errors (r2-errors.ts); bodies are streamed,
 * in and out, never required whole in memory.
 */

export type R2ChecksumName = "md5" | "sha1" | "sha256" | "sha384" | "sha512";

export interface R2ObjectInfo {
  key: string;
  version: string;
  size: number;
  etag: string;
  /** Milliseconds since the epoch. */
  uploaded: number;
  /** contentType, contentLanguage, contentDisposition, contentEncoding, cacheControl, cacheExpiry. */
  httpMetadata: Record<string, string | number>;
  customMetadata: Record<string, string>;
  /** Hex digests. */
  checksums: Partial<Record<R2ChecksumName, string>>;
}

export type R2Etag = { type: "strong" | "weak"; value: string } | { type: "wildcard" };

/** R2's onlyIf (RFC 9110 §13 conditionals); times in milliseconds since the epoch. */
export interface R2Conditional {
  etagMatches?: R2Etag[];
  etagDoesNotMatch?: R2Etag[];
  uploadedBefore?: number;
  uploadedAfter?: number;
  secondsGranularity?: boolean;
}

export interface R2ByteRange {
  offset: number;
  length: number;
}

/** An object found by get(): its metadata, and its bytes to read (a range of them, streamed). */
export interface R2ObjectBody {
  object: R2ObjectInfo;
  read(range: R2ByteRange): AsyncIterable<Uint8Array>;
}

/** A value to store: exactly `size` bytes arrive from `body`. */
export interface R2Value {
  size: number;
  body: AsyncIterable<Uint8Array>;
}

export interface R2PutOptions {
  httpMetadata?: Record<string, string | number>;
  customMetadata?: Record<string, string>;
  onlyIf?: R2Conditional;
  /** Digests the worker supplied: the stored bytes must match each. */
  checksums?: Partial<Record<R2ChecksumName, Buffer>>;
}

export interface R2ListOptions {
  prefix?: string;
  delimiter?: string;
  cursor?: string;
  startAfter?: string;
  limit?: number;
  include?: ("httpMetadata" | "customMetadata")[];
}

export interface R2ListResult {
  objects: R2ObjectInfo[];
  truncated: boolean;
  cursor?: string;
  delimitedPrefixes: string[];
}

/** One account's R2 buckets. */
export interface R2Buckets {
  head(bucket: string, key: string): Promise<R2ObjectInfo | null>;
  /** null: no such key. A failed `onlyIf` throws R2Error("preconditionFailed") carrying the object. */
  get(bucket: string, key: string, onlyIf?: R2Conditional): Promise<R2ObjectBody | null>;
  put(bucket: string, key: string, value: R2Value, options?: R2PutOptions): Promise<R2ObjectInfo>;
  delete(bucket: string, keys: readonly string[]): Promise<void>;
  list(bucket: string, options?: R2ListOptions): Promise<R2ListResult>;
  createMultipartUpload(bucket: string, key: string, options?: Pick<R2PutOptions, "httpMetadata" | "customMetadata">): Promise<{ uploadId: string }>;
  uploadPart(bucket: string, key: string, uploadId: string, partNumber: number, value: R2Value): Promise<{ etag: string }>;
  completeMultipartUpload(bucket: string, key: string, uploadId: string, parts: readonly { part: number; etag: string }[]): Promise<R2ObjectInfo>;
  abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void>;
}
