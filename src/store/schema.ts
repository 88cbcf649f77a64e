/**
 * The database schema as Kysely sees it. One schema for SQLite and PostgreSQL:
 * timestamps are ISO-8601 strings (UTC), booleans are integers 0/1, JSON columns are text,
 * so no dialect-specific type leaks into the service layer.
 */
import type { ColumnType, Generated } from "kysely";
import type { WorkerTables } from "./worker-schema.ts";

// the Email Workers tables (workers, secrets, KV, logs, analytics, queues, R2) live in worker-schema.ts
export type * from "./worker-schema.ts";

export interface AccountTable {
  id: string;
  name: string;
  created_at: string;
  modified_at: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface ApiTokenTable {
  id: string;
  account_id: string;
  name: string;
  /** active | disabled */
  status: string;
  salt: string;
  /** hex SHA-256(salt ‖ secret) */
  secret_hash: string;
  /** JSON: Cloudflare token policies */
  policies: string;
  /** JSON: { request_ip: { in?: string[], not_in?: string[] } } or null */
  condition: string | null;
  not_before: string | null;
  expires_on: string | null;
  issued_on: string;
  modified_on: string;
  last_used_on: string | null;
}

export interface AuditLogTable {
  id: string;
  account_id: string;
  at: string;
  actor_type: string;
  actor_id: string;
  actor_name: string;
  actor_ip: string | null;
  action: string;
  resource_type: string;
  resource_id: string;
  zone_id: string | null;
  /** JSON or null */
  before: string | null;
  /** JSON or null */
  after: string | null;
  result: string;
  detail: string | null;
}

export interface AddressVerificationTable {
  id: string;
  account_id: string;
  address_id: string;
  requested_at: string;
  claimed_at: string | null;
  token_hash: string | null;
  sent_at: string | null;
  expires_at: string | null;
  used_at: string | null;
  last_error: string | null;
}

export interface ZoneTable {
  id: string;
  account_id: string;
  /** IDNA (ASCII) form, lower-case, no trailing dot. */
  name: string;
  enabled: number;
  support_subaddress: number;
  dot_insensitive: number;
  /** "ready" | "unconfigured" | "misconfigured" */
  status: string;
  /** Refuse DMARC failures under p=reject. */
  enforce_dmarc: Generated<number>;
  /** Refuse mail that passes neither SPF nor DKIM. */
  require_auth: Generated<number>;
  /** Refuse (rather than mark) DMARC failures under p=quarantine. */
  reject_quarantine: Generated<number>;
  spam_threshold: Generated<number | null>;
  /** DKIM-sign and ARC-seal forwarded copies (0: the zone opts out, migration 0006). */
  sign_outbound: Generated<number>;
  created_at: string;
  modified_at: string;
}

export interface DestinationAddressTable {
  id: string;
  account_id: string;
  /** Lower-cased domain; local part as given (compared case-insensitively through email_key). */
  email: string;
  /** Lower-cased full address: the lookup key. */
  email_key: string;
  verified_at: string | null;
  created_at: string;
  modified_at: string;
}

export interface RuleTable {
  id: string;
  zone_id: string;
  name: string;
  enabled: number;
  priority: number;
  /** Normalised matched address (`local@zone`, lower-case): the indexed lookup key. */
  match_key: string;
  /** Cloudflare-shaped matchers, JSON. */
  matchers: string;
  /** Cloudflare-shaped actions, JSON. */
  actions: string;
  created_at: string;
  modified_at: string;
  /** "api" or "wrangler" (a Worker's `addresses` list owns the rule). */
  source: Generated<string>;
  owner_worker_tag: Generated<string | null>;
}

export interface CatchAllTable {
  zone_id: string;
  name: string;
  enabled: number;
  actions: string;
  modified_at: string;
  source: Generated<string>;
  owner_worker_tag: Generated<string | null>;
}

export interface EventTable {
  id: Generated<number>;
  received_at: string;
  session_id: string;
  client_ip: string;
  message_id: string | null;
  subject: string | null;
  mail_from: string;
  rcpt_to: string;
  zone: string | null;
  /** forward | drop | reject | worker | srs-return | refused */
  action: string;
  /** forwarded | dropped | rejected | delivery_failed | deferred | worker (analytics/event-outcome.ts) */
  outcome: string;
  reply_code: number | null;
  reply_text: string | null;
  size: number;
  duration_ms: number;
  /** JSON: per-destination results, timings. */
  detail: string;
  /** The zone's account; null for mail refused before a zone was known. */
  account_id: string | null;
  /** Authentication verdicts (migration 0008), null when not evaluated. */
  spf: ColumnType<string | null, string | null | undefined, string | null>;
  dkim: ColumnType<string | null, string | null | undefined, string | null>;
  dmarc: ColumnType<string | null, string | null | undefined, string | null>;
  arc: ColumnType<string | null, string | null | undefined, string | null>;
  spam_score: ColumnType<number | null, number | null | undefined, number | null>;
  /** The reply line of the destination that decided the outcome. */
  upstream: ColumnType<string | null, string | null | undefined, string | null>;
  /** Addresses that accepted the message, comma-separated. */
  destinations: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface DeliveryLedgerTable {
  fingerprint: string;
  destination: string;
  accepted_at: string;
  expires_at: string;
  upstream_reply: string;
}

export interface ConfigVersionTable {
  id: number;
  version: number;
}

export interface SettingTable {
  key: string;
  value: string;
}

/** A delivery attempt's intent (migration 0005): written before the final dot, see delivery-ledger-store.ts. */
export interface DeliveryIntentTable {
  fingerprint: string;
  destination: string;
  attempt_id: string;
  /** "sending" | "maybe-delivered" */
  state: string;
  started_at: string;
  settles_at: string;
  expires_at: string;
}

export interface Database extends WorkerTables {
  accounts: AccountTable;
  api_tokens: ApiTokenTable;
  audit_log: AuditLogTable;
  address_verifications: AddressVerificationTable;
  zones: ZoneTable;
  destination_addresses: DestinationAddressTable;
  rules: RuleTable;
  catch_alls: CatchAllTable;
  events: EventTable;
  delivery_ledger: DeliveryLedgerTable;
  config_version: ConfigVersionTable;
  settings: SettingTable;
  delivery_intents: DeliveryIntentTable;
}

// ── 0010_delivery_queue (issue 13) ──

export interface ZoneTable {
  /** "relay" (in-session, the default) or "queue" (stored and retried when a destination defers). */
  delivery_mode: Generated<string>;
}

export interface QueuedMessageTable {
  id: string;
  account_id: string;
  zone: string | null;
  created_at: string;
  next_attempt_at: string;
  expires_at: string;
  attempts: Generated<number>;
  delivered: Generated<number>;
  envelope_from: string;
  /** The original sender, who gets the DSN; "" for the null sender (no DSN is ever sent to it). */
  dsn_to: string;
  /** JSON string[] */
  recipients: string;
  /** JSON string[][] */
  chains: string;
  fingerprint: string;
  size: number;
  message_id: string | null;
  subject: string | null;
  last_reply: string | null;
  claimed_by: string | null;
  claim_expires_at: string | null;
}

export interface QueuedMessageChunkTable {
  message_id: string;
  seq: number;
  data: Uint8Array;
}

export interface Database {
  queued_messages: QueuedMessageTable;
  queued_message_chunks: QueuedMessageChunkTable;
}

// ── 0009_cluster (issue 13) ──

/** A key or secret shared by every node, sealed with the cluster key (store/sealed-secret-store.ts). */
export interface ClusterSecretTable {
  /** The name it had as a file in the data directory, e.g. `srs-secrets`, `dkim/<domain>/<selector>.rsa.pem`. */
  name: string;
  /** Which cluster key sealed it (config/cluster-key.ts): a wrong key is named, not guessed at. */
  key_id: string;
  /** base64url(iv ‖ tag ‖ ciphertext), AES-256-GCM with the name as associated data. */
  sealed: string;
  created_at: string;
}

/** Who runs a housekeeping job until when (store/repositories/lease-repository.ts). */
export interface LeaseTable {
  name: string;
  holder: string;
  /** ISO-8601 UTC */
  expires_at: string;
}

export interface EventTable {
  /** The node that handled the message (--node-id); null for events from before migration 0009. */
  node_id: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface Database {
  cluster_secrets: ClusterSecretTable;
  leases: LeaseTable;
}

// ── 0011_event_rollups (issue 10) ──

/** Events counted per zone, account, hour ("YYYY-MM-DDTHH") and outcome, for summaries. */
export interface EventHourlyTable {
  zone: string;
  account_id: string;
  hour: string;
  outcome: string;
  count: number;
}

export interface Database {
  event_hourly: EventHourlyTable;
}

// ── 0012_rule_delivery_mode (issue 13) ──

export interface RuleTable {
  /** "relay" or "queue"; null follows the zone's delivery_mode. */
  delivery_mode: ColumnType<string | null, string | null | undefined, string | null>;
}
