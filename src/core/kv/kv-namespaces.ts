/**
 * Workers KV's semantics over the kv repository: the `KvStore` the worker runtime binds
 * `env.<KV>` to, and the one KvService (kv-service.ts) checks and writes through, identical on
 * SQLite and PostgreSQL. A running worker's reads and writes come here directly, not through
 * `ctx.change()`: they are the worker's own data on the mail hot path, not configuration, and
 * auditing each would flood the audit log; an operator's writes go through KvService. A namespace is named by its id (the `id` in the
 * wrangler file, or `--kv BINDING=id`) and exists as soon as a key is written to it.
 *
 * Promises, as Cloudflare KV documents them:
 *  - an entry whose expiration (epoch seconds) has passed is absent to get and list, whether
 *    or not `purgeExpiredKv` has removed it yet;
 *  - list returns keys in UTF-8 byte order, at most `limit` (default and maximum 1000) at a
 *    time; its cursor is opaque and stable: it names the last key returned, so keys written
 *    or deleted between pages never make a page repeat or skip a surviving key;
 *  - keys are 1–512 UTF-8 bytes, values at most 25 MiB, metadata at most 1024 bytes as JSON;
 *    a violation throws a WorkerCallError (a KvError but for the empty key's TypeError)
 *    worded as workerd words it ("KV PUT failed: 413 Value length of … exceeds limit of
 *    26214400."), because workers may match on the text. The runtime's kv-rules.ts checks
 *    a worker's calls first; these checks keep every other caller (CLI, API) to the same limits.
 */
import type { Kysely } from "kysely";
import * as kvEntries from "../../store/repositories/kv-repository.ts";
import type { Database } from "../../store/schema.ts";
import { WorkerCallError, type KvStore } from "../../workers/worker-types.ts";

export const KV_LIMITS = Object.freeze({
  maxKeyBytes: 512,
  maxValueBytes: 25 * 1024 * 1024,
  maxMetadataBytes: 1024,
  maxListKeys: 1000,
  minExpirationTtlSeconds: 60,
});

/** workerd words a failed list() as "KV GET failed" (it is a GET on the namespace). */
export type KvOperation = "GET" | "PUT" | "DELETE";

/**
 * An error a worker sees from its KV binding; `message` is workerd's exact wording. A
 * WorkerCallError, so the runtime surfaces it to the worker verbatim, as a plain Error.
 */
export class KvError extends WorkerCallError {
  readonly status: number;
  readonly operation: KvOperation;

  constructor(operation: KvOperation, status: number, reason: string) {
    super(`KV ${operation} failed: ${status} ${reason}`, "Error");
    this.name = "KvError";
    this.status = status;
    this.operation = operation;
  }
}

export interface StoreKvOptions {
  /** Milliseconds since the epoch; injected so tests can move time. */
  now?: () => number;
}

/** KV for one account's namespaces, backed by the `kv_entries` table. */
export function createKvNamespaces(db: Kysely<Database>, account: string, options: StoreKvOptions = {}): KvStore {
  const now = options.now ?? Date.now;
  // Alive iff expiration * 1000 > now: for whole seconds that is expiration > floor(now / 1000).
  const nowSeconds = (): number => Math.floor(now() / 1000);

  return Object.freeze({
    get: async function kvGet(namespace: string, key: string) {
      checkNamespace(namespace);
      checkKey("GET", key);
      const row = await kvEntries.readKvEntry(db, account, namespace, key, nowSeconds());
      if (row === undefined) return null;
      return { value: ownBytes(row.value), metadata: row.metadata === null ? null : (JSON.parse(row.metadata) as unknown) };
    },

    put: async function kvPut(namespace: string, key: string, value: Uint8Array, putOptions: { expiration?: number; metadata?: unknown }) {
      checkNamespace(namespace);
      checkKey("PUT", key);
      const expiration = putOptions.expiration === undefined ? null : checkExpiration(putOptions.expiration, nowSeconds());
      if (value.byteLength > KV_LIMITS.maxValueBytes) {
        throw new KvError("PUT", 413, `Value length of ${value.byteLength} exceeds limit of ${KV_LIMITS.maxValueBytes}.`);
      }
      const metadata = serializeMetadata(putOptions.metadata);
      await kvEntries.writeKvEntry(db, { account, namespace, key, value, metadata, expiration });
    },

    delete: async function kvDelete(namespace: string, key: string) {
      checkNamespace(namespace);
      checkKey("DELETE", key);
      await kvEntries.deleteKvEntry(db, account, namespace, key);
    },

    list: async function kvList(namespace: string, listOptions: { prefix?: string; limit?: number; cursor?: string }) {
      checkNamespace(namespace);
      const limit = listOptions.limit ?? KV_LIMITS.maxListKeys;
      if (!(limit >= 1)) throw new KvError("GET", 400, `Invalid key_count_limit of ${limit}. Please specify an integer greater than 0.`);
      // (sic) Cloudflare's text says "less than" although 1000 itself is accepted.
      if (limit > KV_LIMITS.maxListKeys) throw new KvError("GET", 400, `Invalid key_count_limit of ${limit}. Please specify an integer less than ${KV_LIMITS.maxListKeys}.`);
      const prefix = listOptions.prefix ?? "";
      checkKeyLength("GET", prefix);
      const after = listOptions.cursor === undefined || listOptions.cursor === "" ? null : decodeCursor(listOptions.cursor);

      // A key range, so the primary key's index does the work: every key starting with the
      // prefix is ≥ it and < its successor, and nothing else is.
      const rows = await kvEntries.listKvKeys(db, account, namespace, { from: prefix, to: prefix === "" ? null : prefixSuccessor(prefix), after, limit: Math.trunc(limit) + 1, nowSeconds: nowSeconds() });

      const page = rows.slice(0, Math.trunc(limit));
      const keys = page.map((row) => ({
        name: row.key,
        ...(row.expiration === null ? {} : { expiration: Number(row.expiration) }),
        ...(row.metadata === null ? {} : { metadata: JSON.parse(row.metadata) as unknown }),
      }));
      const last = page.at(-1);
      if (rows.length > page.length && last !== undefined) return { keys, list_complete: false, cursor: encodeCursor(last.key) };
      return { keys, list_complete: true };
    },
  });
}

/**
 * Translates a worker's `put` options into the epoch-seconds expiration KvStore.put takes,
 * with Cloudflare's rules and texts: `expirationTtl` wins over `expiration`, a TTL is at
 * least 60 s, an absolute expiration at least 60 s in the future. For the runtime's binding.
 */
export function kvPutExpiration(options: { expiration?: number | string; expirationTtl?: number | string }, nowMs: number): number | undefined {
  const now = Math.floor(nowMs / 1000);
  if (options.expirationTtl !== undefined && options.expirationTtl !== null) {
    const ttl = Math.trunc(Number(options.expirationTtl));
    if (Number.isNaN(ttl) || ttl <= 0) throw new KvError("PUT", 400, `Invalid expiration_ttl of ${options.expirationTtl}. Please specify integer greater than 0.`);
    if (ttl < KV_LIMITS.minExpirationTtlSeconds) {
      throw new KvError("PUT", 400, `Invalid expiration_ttl of ${options.expirationTtl}. Expiration TTL must be at least ${KV_LIMITS.minExpirationTtlSeconds}.`);
    }
    return now + ttl;
  }
  if (options.expiration !== undefined && options.expiration !== null) {
    const expiration = Math.trunc(Number(options.expiration));
    if (Number.isNaN(expiration) || expiration <= now) {
      throw new KvError("PUT", 400, `Invalid expiration of ${options.expiration}. Please specify integer greater than the current number of seconds since the UNIX epoch.`);
    }
    if (expiration < now + KV_LIMITS.minExpirationTtlSeconds) {
      throw new KvError("PUT", 400, `Invalid expiration of ${options.expiration}. Expiration times must be at least ${KV_LIMITS.minExpirationTtlSeconds} seconds in the future.`);
    }
    return expiration;
  }
  return undefined;
}

/** Deletes entries expired at `now` (all accounts); returns how many. For a periodic sweep. */
export function purgeExpiredKv(db: Kysely<Database>, now: Date): Promise<number> {
  return kvEntries.purgeExpiredKvEntries(db, Math.floor(now.getTime() / 1000));
}

function checkNamespace(namespace: string): void {
  // Not a worker-facing error: bindings are validated at deploy, so this is a host bug.
  if (typeof namespace !== "string" || namespace === "") throw new Error("KV namespace id must be a non-empty string");
}

function checkKey(operation: KvOperation, key: string): void {
  // workerd refuses this one itself, as a TypeError, before any request is made.
  if (key === "") throw new WorkerCallError("Key name cannot be empty.", "TypeError");
  if (key === "." || key === "..") throw new KvError(operation, 400, `Illegal key name "${key}". Please use a different name.`);
  checkKeyLength(operation, key);
}

function checkKeyLength(operation: KvOperation, key: string): void {
  const length = Buffer.byteLength(key, "utf8");
  if (length > KV_LIMITS.maxKeyBytes) {
    throw new KvError(operation, 414, `UTF-8 encoded length of ${length} exceeds key length limit of ${KV_LIMITS.maxKeyBytes}.`);
  }
}

/** KvStore.put takes a computed expiration; only "already past" is refused here (see kvPutExpiration). */
function checkExpiration(expiration: number, now: number): number {
  const seconds = Math.trunc(expiration);
  if (!Number.isFinite(seconds) || seconds <= now) {
    throw new KvError("PUT", 400, `Invalid expiration of ${expiration}. Please specify integer greater than the current number of seconds since the UNIX epoch.`);
  }
  return seconds;
}

function serializeMetadata(metadata: unknown): string | null {
  if (metadata === undefined || metadata === null) return null;
  let json: string | undefined;
  try {
    json = JSON.stringify(metadata);
  } catch (error) {
    throw new KvError("PUT", 400, `Metadata is not serializable to JSON: ${(error as Error).message}`);
  }
  if (json === undefined) return null;
  const length = Buffer.byteLength(json, "utf8");
  if (length > KV_LIMITS.maxMetadataBytes) throw new KvError("PUT", 413, `Metadata length of ${length} exceeds limit of ${KV_LIMITS.maxMetadataBytes}.`);
  return json;
}

/**
 * The smallest string greater than every string that starts with `prefix` (code-point order,
 * which is UTF-8 byte order): the prefix with its last code point incremented. Null when no
 * such bound exists (a prefix made only of U+10FFFF).
 */
export function prefixSuccessor(prefix: string): string | null {
  const points = Array.from(prefix, (char) => char.codePointAt(0)!);
  while (points.length > 0) {
    const last = points.pop()!;
    if (last === 0x10ffff) continue;
    // Skip the surrogate range: those code points cannot appear in well-formed text.
    const next = last === 0xd7ff ? 0xe000 : last + 1;
    return String.fromCodePoint(...points, next);
  }
  return null;
}

function encodeCursor(lastKey: string): string {
  return Buffer.from(JSON.stringify({ after: lastKey }), "utf8").toString("base64url");
}

function decodeCursor(cursor: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as { after?: unknown };
    if (typeof parsed.after === "string") return parsed.after;
  } catch {
    // fall through: not one of ours
  }
  throw new KvError("GET", 400, "Invalid cursor");
}

/**
 * pg returns bytea as a Buffer that may be a view into a shared pool; a consumer that reads
 * `.buffer` (to transfer it, say) must see only this value's bytes.
 */
function ownBytes(value: Uint8Array): Uint8Array {
  if (value.byteOffset === 0 && value.byteLength === value.buffer.byteLength && !Buffer.isBuffer(value)) return value;
  if (value.byteOffset === 0 && value.byteLength === value.buffer.byteLength) return new Uint8Array(value.buffer, 0, value.byteLength);
  return new Uint8Array(value);
}
