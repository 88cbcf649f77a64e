/**
 * The checks Cloudflare KV applies to a worker's calls, with the texts a worker sees there
 * (workerd's binding wraps the service's refusal as `KV <OP> failed: <status> <text>`; the
 * texts are the KV API's as Miniflare reproduces them, checked against workerd 1.20260730).
 *
 * Promises: pure apart from the clock passed in; every refusal is a WorkerCallError, so the
 * worker gets the text verbatim; expirationTtl is turned into an absolute expiration here, so the
 * store only ever sees epoch seconds.
 */
import { WorkerCallError } from "./worker-types.ts";

export const KV_LIMITS = {
  minExpirationTtlSeconds: 60,
  maxKeyBytes: 512,
  maxValueBytes: 25 * 1024 * 1024,
  maxMetadataBytes: 1024,
  maxListKeys: 1000,
} as const;

/** workerd names a list() call "GET" in its error text. */
export type KvOp = "GET" | "PUT" | "DELETE";

function refusal(op: KvOp, status: number, text: string): WorkerCallError {
  return new WorkerCallError(`KV ${op} failed: ${status} ${text}`);
}

export function checkKvKey(op: KvOp, key: string): void {
  // workerd raises this one itself, as a TypeError, before any request
  if (key === "") throw new WorkerCallError("Key name cannot be empty.", "TypeError");
  if (key === "." || key === "..") throw refusal(op, 400, `Illegal key name "${key}". Please use a different name.`);
  checkKeyLength(op, key);
}

function checkKeyLength(op: KvOp, key: string): void {
  const length = Buffer.byteLength(key);
  if (length > KV_LIMITS.maxKeyBytes) {
    throw refusal(op, 414, `UTF-8 encoded length of ${length} exceeds key length limit of ${KV_LIMITS.maxKeyBytes}.`);
  }
}

export interface KvPutRequest {
  key: string;
  expiration?: unknown;
  expirationTtl?: unknown;
  metadata?: unknown;
}

/** Validates a put and resolves its options for KvStore.put. */
export function resolveKvPut(
  request: KvPutRequest,
  valueBytes: number,
  nowSeconds: number,
): { expiration?: number; metadata?: unknown } {
  checkKvKey("PUT", request.key);
  const options: { expiration?: number; metadata?: unknown } = {};
  if (request.expirationTtl !== undefined && request.expirationTtl !== null) {
    const ttl = Math.trunc(Number(request.expirationTtl));
    const shown = String(request.expirationTtl);
    if (Number.isNaN(ttl) || ttl <= 0) throw refusal("PUT", 400, `Invalid expiration_ttl of ${shown}. Please specify integer greater than 0.`);
    if (ttl < KV_LIMITS.minExpirationTtlSeconds) {
      throw refusal("PUT", 400, `Invalid expiration_ttl of ${shown}. Expiration TTL must be at least ${KV_LIMITS.minExpirationTtlSeconds}.`);
    }
    options.expiration = nowSeconds + ttl;
  } else if (request.expiration !== undefined && request.expiration !== null) {
    const expiration = Math.trunc(Number(request.expiration));
    const shown = String(request.expiration);
    if (Number.isNaN(expiration) || expiration <= nowSeconds) {
      throw refusal("PUT", 400, `Invalid expiration of ${shown}. Please specify integer greater than the current number of seconds since the UNIX epoch.`);
    }
    if (expiration < nowSeconds + KV_LIMITS.minExpirationTtlSeconds) {
      throw refusal("PUT", 400, `Invalid expiration of ${shown}. Expiration times must be at least ${KV_LIMITS.minExpirationTtlSeconds} seconds in the future.`);
    }
    options.expiration = expiration;
  }
  if (request.metadata !== undefined && request.metadata !== null) {
    const length = Buffer.byteLength(JSON.stringify(request.metadata));
    if (length > KV_LIMITS.maxMetadataBytes) throw refusal("PUT", 413, `Metadata length of ${length} exceeds limit of ${KV_LIMITS.maxMetadataBytes}.`);
    options.metadata = request.metadata;
  }
  if (valueBytes > KV_LIMITS.maxValueBytes) throw refusal("PUT", 413, `Value length of ${valueBytes} exceeds limit of ${KV_LIMITS.maxValueBytes}.`);
  return options;
}

export interface KvListRequest {
  prefix?: unknown;
  limit?: unknown;
  cursor?: unknown;
}

export function resolveKvList(request: KvListRequest): { prefix?: string; limit: number; cursor?: string } {
  const options: { prefix?: string; limit: number; cursor?: string } = { limit: KV_LIMITS.maxListKeys };
  // workerd leaves a falsy limit out of the request, so 0 means the default
  if (request.limit !== undefined && request.limit !== null && request.limit !== 0) {
    const limit = Math.trunc(Number(request.limit));
    if (Number.isNaN(limit) || limit < 1) throw refusal("GET", 400, `Invalid key_count_limit of ${String(request.limit)}. Please specify an integer greater than 0.`);
    if (limit > KV_LIMITS.maxListKeys) {
      throw refusal("GET", 400, `Invalid key_count_limit of ${String(request.limit)}. Please specify an integer less than ${KV_LIMITS.maxListKeys}.`);
    }
    options.limit = limit;
  }
  if (request.prefix !== undefined && request.prefix !== null) {
    options.prefix = String(request.prefix);
    checkKeyLength("GET", options.prefix);
  }
  if (request.cursor !== undefined && request.cursor !== null && request.cursor !== "") options.cursor = String(request.cursor);
  return options;
}
