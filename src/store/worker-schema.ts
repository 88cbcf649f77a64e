/**
 * The Email Workers' tables (migrations 0003, 0007, 0013) as Kysely sees them: deployed
 * workers and their secrets, KV, console logs, Analytics Engine points, queue messages and R2
 * objects. schema.ts's Database includes them; same conventions (ISO-8601 UTC text, JSON text).
 */
import type { ColumnType, Generated } from "kysely";

/** A deployed Email Worker: its bundle and bindings (secrets live in worker_secrets). */
export interface WorkerTable {
  account_id: string;
  /** Lower-case script name, as rules name it. */
  name: string;
  /** The bundled ES module (one file, `export default { email }`). */
  bundle: string;
  /** YYYY-MM-DD */
  compatibility_date: string;
  /** JSON string[] */
  compatibility_flags: string;
  /** JSON object: binding → value (strings stay strings, JSON values as given). */
  vars: string;
  /** JSON [{ binding, namespace }] */
  kv: string;
  /** JSON [{ name, destinationAddress?, allowedDestinationAddresses?, allowedSenderAddresses? }] */
  send_email: string;
  /** sha256 (hex) of bundle + bindings + secret ciphertexts: moves on every effective change. */
  version: string;
  created_at: string;
  modified_at: string;
  /** JSON [{ name, type, base64 }]: the worker's modules besides the main one (wrangler's rules, no_bundle). */
  modules: Generated<string>;
  /** JSON PlatformBindings: D1, R2, queues, Analytics Engine, Workers AI, and declared-but-missing bindings. */
  platform_bindings: Generated<string>;
  /** JSON WorkerTriggers: fetch() routes, workers_dev, queue consumers. */
  triggers: Generated<string>;
}

export interface WorkerSecretTable {
  account_id: string;
  worker: string;
  key: string;
  /** AES-256-GCM under the data dir's worker-secrets.key (secret-box.ts); never plaintext. */
  ciphertext: string;
  modified_at: string;
}

/**
 * bigint columns come back from pg as strings (int8 exceeds a JS number's safe range in
 * general); node:sqlite returns numbers. Readers convert with Number().
 */
type EpochSecondsColumn = ColumnType<number | string | null, number | null, number | null>;

export interface KvEntryTable {
  account_id: string;
  namespace: string;
  /** Compared byte-wise (C collation on PostgreSQL, BINARY on SQLite), as Cloudflare sorts keys. */
  key: string;
  /** Raw bytes: blob (SQLite) / bytea (PostgreSQL). */
  value: Uint8Array;
  /** JSON text, or null when the entry has none. */
  metadata: string | null;
  /** Epoch seconds after which the entry is absent; null never expires. */
  expiration: EpochSecondsColumn;
}

export interface WorkerLogTable {
  id: Generated<number>;
  account_id: string;
  worker: string;
  /** ISO-8601 UTC */
  at: string;
  /** log | debug | info | warn | error | system */
  level: string;
  message: string;
}

/** One Analytics Engine data point (writeDataPoint), queryable with `mailroute worker analytics`. */
export interface WorkerAnalyticsTable {
  id: Generated<number>;
  account_id: string;
  dataset: string;
  /** ISO-8601 UTC */
  written_at: string;
  /** index1 ("" when the point has none), Analytics Engine's sampling key */
  index1: string;
  /** JSON (string | null)[] : blob1…blob20 */
  blobs: string;
  /** JSON number[] : double1…double20 */
  doubles: string;
}

/** A message sent to a queue, until its consumer acknowledges it (or it goes to the dead-letter queue). */
export interface WorkerQueueMessageTable {
  id: string;
  account_id: string;
  queue: string;
  /** json | text | bytes | v8 */
  content_type: string;
  /** JSON text, plain text or base64 (bytes) */
  body: string;
  attempts: number;
  /** ISO-8601 UTC: not delivered before (delaySeconds, retry delays) */
  visible_at: string;
  /** ISO-8601 UTC: a node's claim on the message while its batch runs; null when free */
  claimed_until: string | null;
  created_at: string;
}

/** A bigint column: node:sqlite answers a number, pg a string. */
type BigIntColumn = ColumnType<number | string, number, number>;

export interface R2ObjectTable {
  account_id: string;
  bucket: string;
  /** Compared byte-wise (C collation on PostgreSQL, BINARY on SQLite), as R2 lists keys. */
  key: string;
  version: string;
  size: BigIntColumn;
  etag: string;
  /** Milliseconds since the epoch. */
  uploaded: BigIntColumn;
  /** JSON { md5?, sha1?, sha256?, sha384?, sha512? }, hex. */
  checksums: string;
  /** JSON R2 httpMetadata / customMetadata. */
  http_metadata: string;
  custom_metadata: string;
  /** JSON [[blob id, size], …]: the object's bytes in order (one blob, or one per part). */
  segments: string;
}

export interface R2BlobTable {
  id: string;
  account_id: string;
  /** 0 being written, 1 in use, 2 released (swept after a grace period). */
  state: number;
  /** Milliseconds since the epoch of the last state change. */
  changed_at: BigIntColumn;
}

export interface R2BlobChunkTable {
  blob_id: string;
  seq: number;
  data: Uint8Array;
}

export interface R2UploadTable {
  account_id: string;
  bucket: string;
  upload_id: string;
  key: string;
  http_metadata: string;
  custom_metadata: string;
  /** 0 in progress, 1 completed, 2 aborted. */
  state: number;
  created_at: BigIntColumn;
}

export interface R2UploadPartTable {
  account_id: string;
  bucket: string;
  upload_id: string;
  part_number: number;
  blob_id: string;
  size: BigIntColumn;
  etag: string;
  /** Hex MD5 of the part's bytes: the completed object's etag is built from these. */
  md5: string;
}

export interface WorkerTables {
  workers: WorkerTable;
  worker_secrets: WorkerSecretTable;
  kv_entries: KvEntryTable;
  worker_logs: WorkerLogTable;
  worker_analytics: WorkerAnalyticsTable;
  worker_queue_messages: WorkerQueueMessageTable;
  r2_objects: R2ObjectTable;
  r2_blobs: R2BlobTable;
  r2_blob_chunks: R2BlobChunkTable;
  r2_uploads: R2UploadTable;
  r2_upload_parts: R2UploadPartTable;
}
