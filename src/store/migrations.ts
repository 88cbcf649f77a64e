/**
 * The schema's history, as Kysely migrations kept in code ("0001_initial", …) so they ship
 * inside the package and run the same on SQLite and PostgreSQL: schema builder only, text
 * timestamps, integer booleans. A migration, once released, is never edited — add the next one.
 *
 * Promises: `migrateToLatest` applies every pending migration or throws an Error naming the
 * one that failed; applied migrations are recorded, so running it again is a no-op.
 */
import { sql, type Kysely } from "kysely";
import { Migrator, type Migration, type MigrationProvider } from "kysely/migration";
import type { StoreDialect } from "./store.ts";
import { deliveryQueueUp } from "./migrations/0010-delivery-queue.ts";
import { eventRollupsUp } from "./migrations/0011-event-rollups.ts";

// Migrations take Kysely<any>, not Kysely<Database>: each one is a frozen snapshot written
// against the schema as it was then, and must keep compiling as schema.ts moves on.
type MigrationDb = Kysely<any>;

function defineMigrations(dialect: StoreDialect): Record<string, Migration> {
  return {
    "0001_initial": {
      async up(db: MigrationDb): Promise<void> {
        await db.schema
          .createTable("accounts")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .execute();

        await db.schema
          .createTable("zones")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("enabled", "integer", (c) => c.notNull().defaultTo(1))
          .addColumn("support_subaddress", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("dot_insensitive", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("status", "text", (c) => c.notNull().defaultTo("unconfigured"))
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("modified_at", "text", (c) => c.notNull())
          // One zone per domain across all accounts: the SMTP server looks zones up by name alone.
          .addUniqueConstraint("zones_name_unique", ["name"])
          .execute();
        await db.schema.createIndex("zones_account_id_index").on("zones").column("account_id").execute();

        await db.schema
          .createTable("destination_addresses")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
          .addColumn("email", "text", (c) => c.notNull())
          .addColumn("email_key", "text", (c) => c.notNull())
          .addColumn("verified_at", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("modified_at", "text", (c) => c.notNull())
          .addUniqueConstraint("destination_addresses_account_email_unique", ["account_id", "email_key"])
          .execute();

        await db.schema
          .createTable("rules")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("zone_id", "text", (c) => c.notNull().references("zones.id").onDelete("cascade"))
          .addColumn("name", "text", (c) => c.notNull().defaultTo(""))
          .addColumn("enabled", "integer", (c) => c.notNull().defaultTo(1))
          .addColumn("priority", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("match_key", "text", (c) => c.notNull())
          .addColumn("matchers", "text", (c) => c.notNull().defaultTo("[]"))
          .addColumn("actions", "text", (c) => c.notNull().defaultTo("[]"))
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("modified_at", "text", (c) => c.notNull())
          // Two rules for one address would make routing depend on row order.
          .addUniqueConstraint("rules_zone_match_key_unique", ["zone_id", "match_key"])
          .execute();
        // RCPT TO resolves by address alone, before it knows the zone's id.
        await db.schema.createIndex("rules_match_key_index").on("rules").column("match_key").execute();

        await db.schema
          .createTable("catch_alls")
          .addColumn("zone_id", "text", (c) => c.primaryKey().references("zones.id").onDelete("cascade"))
          .addColumn("name", "text", (c) => c.notNull().defaultTo(""))
          .addColumn("enabled", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("actions", "text", (c) => c.notNull().defaultTo("[]"))
          .addColumn("modified_at", "text", (c) => c.notNull())
          .execute();

        await db.schema
          .createTable("events")
          // The one dialect branch: SQLite's AUTOINCREMENT is not PostgreSQL syntax, and
          // PostgreSQL's serial is not an SQLite type that aliases the rowid.
          .addColumn("id", dialect === "postgres" ? "serial" : "integer", (c) =>
            dialect === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn("received_at", "text", (c) => c.notNull())
          .addColumn("session_id", "text", (c) => c.notNull())
          .addColumn("client_ip", "text", (c) => c.notNull())
          .addColumn("message_id", "text")
          .addColumn("subject", "text")
          .addColumn("mail_from", "text", (c) => c.notNull())
          .addColumn("rcpt_to", "text", (c) => c.notNull())
          .addColumn("zone", "text")
          .addColumn("action", "text", (c) => c.notNull())
          .addColumn("outcome", "text", (c) => c.notNull())
          .addColumn("reply_code", "integer")
          .addColumn("reply_text", "text")
          .addColumn("size", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("duration_ms", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("detail", "text", (c) => c.notNull().defaultTo("{}"))
          .execute();
        await db.schema.createIndex("events_received_at_index").on("events").column("received_at").execute();
        await db.schema.createIndex("events_message_id_index").on("events").column("message_id").execute();

        await db.schema
          .createTable("delivery_ledger")
          .addColumn("fingerprint", "text", (c) => c.notNull())
          .addColumn("destination", "text", (c) => c.notNull())
          .addColumn("accepted_at", "text", (c) => c.notNull())
          .addColumn("expires_at", "text", (c) => c.notNull())
          .addColumn("upstream_reply", "text", (c) => c.notNull().defaultTo(""))
          .addPrimaryKeyConstraint("delivery_ledger_pk", ["fingerprint", "destination"])
          .execute();
        // purgeExpired scans by expiry.
        await db.schema.createIndex("delivery_ledger_expires_at_index").on("delivery_ledger").column("expires_at").execute();

        await db.schema
          .createTable("config_version")
          .addColumn("id", "integer", (c) => c.primaryKey())
          .addColumn("version", "integer", (c) => c.notNull().defaultTo(0))
          // Exactly one row: every bump and every poll address id = 1.
          .addCheckConstraint("config_version_single_row", sql`id = 1`)
          .execute();
        await db.insertInto("config_version").values({ id: 1, version: 0 }).execute();

        await db.schema
          .createTable("settings")
          .addColumn("key", "text", (c) => c.primaryKey())
          .addColumn("value", "text", (c) => c.notNull())
          .execute();
      },
    },
    "0002_zone_auth_policy": {
      // Per-zone relaxations of inbound authentication (issue 3): on by default, as
      // Cloudflare enforces them; an operator can relax each for a zone with odd senders.
      async up(db: MigrationDb): Promise<void> {
        await db.schema.alterTable("zones").addColumn("enforce_dmarc", "integer", (c) => c.notNull().defaultTo(1)).execute();
        await db.schema.alterTable("zones").addColumn("require_auth", "integer", (c) => c.notNull().defaultTo(1)).execute();
        await db.schema.alterTable("zones").addColumn("reject_quarantine", "integer", (c) => c.notNull().defaultTo(0)).execute();
        // Spam score (0–5) above which mail is refused; NULL never refuses on score alone.
        await db.schema.alterTable("zones").addColumn("spam_threshold", "real").execute();
      },
    },
    "0003_workers": {
      // Email Workers (issue 4): deployed bundles with their bindings, encrypted secrets, the
      // KV namespaces workers read and write, and a bounded log for `worker tail`.
      async up(db: MigrationDb): Promise<void> {
        await db.schema
          .createTable("workers")
          .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("bundle", "text", (c) => c.notNull())
          .addColumn("compatibility_date", "text", (c) => c.notNull())
          .addColumn("compatibility_flags", "text", (c) => c.notNull().defaultTo("[]"))
          .addColumn("vars", "text", (c) => c.notNull().defaultTo("{}"))
          .addColumn("kv", "text", (c) => c.notNull().defaultTo("[]"))
          .addColumn("send_email", "text", (c) => c.notNull().defaultTo("[]"))
          .addColumn("version", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("modified_at", "text", (c) => c.notNull())
          // One script per name in an account: rules route to it by name.
          .addPrimaryKeyConstraint("workers_pk", ["account_id", "name"])
          .execute();

        await db.schema
          .createTable("worker_secrets")
          .addColumn("account_id", "text", (c) => c.notNull())
          .addColumn("worker", "text", (c) => c.notNull())
          .addColumn("key", "text", (c) => c.notNull())
          .addColumn("ciphertext", "text", (c) => c.notNull())
          .addColumn("modified_at", "text", (c) => c.notNull())
          .addPrimaryKeyConstraint("worker_secrets_pk", ["account_id", "worker", "key"])
          // A removed worker takes its secrets with it; a redeploy (an UPDATE) keeps them.
          .addForeignKeyConstraint("worker_secrets_worker_fk", ["account_id", "worker"], "workers", ["account_id", "name"], (fk) => fk.onDelete("cascade"))
          .execute();

        await db.schema
          .createTable("kv_entries")
          .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
          .addColumn("namespace", "text", (c) => c.notNull())
          // Cloudflare lists keys in UTF-8 byte order. SQLite's default BINARY collation is
          // that order; PostgreSQL's database collation (often en_US) is not, so the key
          // column takes "C" there, which also lets the primary key's index serve range scans.
          .addColumn("key", dialect === "postgres" ? sql`text collate "C"` : "text", (c) => c.notNull())
          // Values are arbitrary bytes up to 25 MiB: a real binary column (one dialect
          // branch) rather than base64 text, which would cost a third more space and an
          // encode/decode of every value.
          .addColumn("value", dialect === "postgres" ? "bytea" : "blob", (c) => c.notNull())
          .addColumn("metadata", "text")
          // Epoch seconds; bigint because int4 ends in 2038.
          .addColumn("expiration", "bigint")
          // (account, namespace) equality then a key range: point reads, prefix listing and
          // cursor continuation all walk this one index in order.
          .addPrimaryKeyConstraint("kv_entries_pk", ["account_id", "namespace", "key"])
          .execute();
        // Purging expired entries scans by expiry.
        await db.schema.createIndex("kv_entries_expiration_index").on("kv_entries").column("expiration").execute();

        await db.schema
          .createTable("worker_logs")
          .addColumn("id", dialect === "postgres" ? "serial" : "integer", (c) =>
            dialect === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn("account_id", "text", (c) => c.notNull())
          .addColumn("worker", "text", (c) => c.notNull())
          .addColumn("at", "text", (c) => c.notNull())
          .addColumn("level", "text", (c) => c.notNull())
          .addColumn("message", "text", (c) => c.notNull())
          .execute();
        // `worker tail` reads one worker's newest lines and then polls for ids above the last.
        await db.schema.createIndex("worker_logs_worker_index").on("worker_logs").columns(["account_id", "worker", "id"]).execute();
      },
    },
    "0004_control_plane": {
      // Accounts, API tokens, the audit log and verification links (issue 7): the control
      // plane that the REST API, the CLI and the dashboard share.
      async up(db: MigrationDb): Promise<void> {
        await db.schema.alterTable("accounts").addColumn("modified_at", "text").execute();

        await db.schema
          .createTable("api_tokens")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
          .addColumn("name", "text", (c) => c.notNull())
          // active | disabled (Cloudflare's statuses; "expired" is derived from expires_on).
          .addColumn("status", "text", (c) => c.notNull().defaultTo("active"))
          // Salted SHA-256 of the secret part (the value is 256 random bits, so a slow KDF
          // would add nothing but latency); the value itself is never stored.
          .addColumn("salt", "text", (c) => c.notNull())
          .addColumn("secret_hash", "text", (c) => c.notNull())
          .addColumn("policies", "text", (c) => c.notNull().defaultTo("[]"))
          .addColumn("condition", "text")
          .addColumn("not_before", "text")
          .addColumn("expires_on", "text")
          .addColumn("issued_on", "text", (c) => c.notNull())
          .addColumn("modified_on", "text", (c) => c.notNull())
          .addColumn("last_used_on", "text")
          .execute();
        await db.schema.createIndex("api_tokens_account_index").on("api_tokens").column("account_id").execute();

        await db.schema
          .createTable("audit_log")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("account_id", "text", (c) => c.notNull())
          .addColumn("at", "text", (c) => c.notNull())
          // token | operator | system
          .addColumn("actor_type", "text", (c) => c.notNull())
          .addColumn("actor_id", "text", (c) => c.notNull())
          .addColumn("actor_name", "text", (c) => c.notNull())
          .addColumn("actor_ip", "text")
          .addColumn("action", "text", (c) => c.notNull())
          .addColumn("resource_type", "text", (c) => c.notNull())
          .addColumn("resource_id", "text", (c) => c.notNull())
          .addColumn("zone_id", "text")
          .addColumn("before", "text")
          .addColumn("after", "text")
          // success | failure
          .addColumn("result", "text", (c) => c.notNull())
          .addColumn("detail", "text")
          .execute();
        // Listing is per account, newest first, with (at, id) as the cursor.
        await db.schema.createIndex("audit_log_account_at_index").on("audit_log").columns(["account_id", "at", "id"]).execute();

        // Verification links: a row is a request (written by whoever adds or resends an
        // address); the running server claims it, makes the one-time secret, stores only its
        // hash and sends the message. The CLI can request one without a delivery stack.
        await db.schema
          .createTable("address_verifications")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("account_id", "text", (c) => c.notNull())
          .addColumn("address_id", "text", (c) => c.notNull())
          .addColumn("requested_at", "text", (c) => c.notNull())
          .addColumn("claimed_at", "text")
          // SHA-256 of the link's secret: a leaked database cannot verify anything.
          .addColumn("token_hash", "text")
          .addColumn("sent_at", "text")
          .addColumn("expires_at", "text")
          .addColumn("used_at", "text")
          .addColumn("last_error", "text")
          .execute();
        await db.schema.createIndex("address_verifications_token_index").on("address_verifications").column("token_hash").execute();
        await db.schema.createIndex("address_verifications_pending_index").on("address_verifications").columns(["sent_at", "claimed_at"]).execute();

        // Who manages a rule: "api" (people and scripts) or "wrangler" (a Worker's `addresses`
        // list, reconciled by POST …/email/routing/rules/plan), and which Worker owns it.
        await db.schema.alterTable("rules").addColumn("source", "text", (c) => c.notNull().defaultTo("api")).execute();
        await db.schema.alterTable("rules").addColumn("owner_worker_tag", "text").execute();
        await db.schema.alterTable("catch_alls").addColumn("source", "text", (c) => c.notNull().defaultTo("api")).execute();
        await db.schema.alterTable("catch_alls").addColumn("owner_worker_tag", "text").execute();

        // Events (the activity log) belong to an account; the zone column already holds its name.
        await db.schema.alterTable("events").addColumn("account_id", "text").execute();
        await db.schema.createIndex("events_account_received_index").on("events").columns(["account_id", "received_at"]).execute();
      },
    },
    "0005_delivery_intent": {
      // Exactly-once across crashes (issue 8 item 9): before the final dot goes to a
      // destination, a durable intent says "this message may be arriving there"; the ledger's
      // acceptance confirms it after the 250. A retry that finds an intent without an
      // acceptance knows the message was maybe delivered, never that it was not.
      async up(db: MigrationDb): Promise<void> {
        await db.schema
          .createTable("delivery_intents")
          .addColumn("fingerprint", "text", (c) => c.notNull())
          .addColumn("destination", "text", (c) => c.notNull())
          // The attempt holding the intent: only it may settle it.
          .addColumn("attempt_id", "text", (c) => c.notNull())
          // "sending" while an attempt may still be live; "maybe-delivered" once it ended
          // after its final dot without a 250.
          .addColumn("state", "text", (c) => c.notNull())
          .addColumn("started_at", "text", (c) => c.notNull())
          // Until then the attempt may be live, in this process or another node: a retry waits.
          .addColumn("settles_at", "text", (c) => c.notNull())
          .addColumn("expires_at", "text", (c) => c.notNull())
          // One live attempt per (message, destination): claims compete on this key.
          .addPrimaryKeyConstraint("delivery_intents_pk", ["fingerprint", "destination"])
          .execute();
        await db.schema.createIndex("delivery_intents_expires_at_index").on("delivery_intents").column("expires_at").execute();
      },
    },
    "0006_zone_signing": {
      // Per-zone opt-out of DKIM signing and ARC sealing (issue 11): a zone whose mail goes
      // by --transport to the operator's own server needs no signature of ours, and signing is
      // the largest CPU cost per message. On by default: every other zone keeps signing.
      async up(db: MigrationDb): Promise<void> {
        await db.schema.alterTable("zones").addColumn("sign_outbound", "integer", (c) => c.notNull().defaultTo(1)).execute();
      },
    },
    "0007_worker_bindings": {
      // The Email Workers platform (issue 9): wrangler's extra modules, D1/R2/Queues/Analytics
      // Engine/AI bindings and fetch/queue triggers per worker; Analytics Engine data points;
      // queue messages until their consumer acknowledges them.
      async up(db: MigrationDb): Promise<void> {
        await db.schema.alterTable("workers").addColumn("modules", "text", (c) => c.notNull().defaultTo("[]")).execute();
        await db.schema.alterTable("workers").addColumn("platform_bindings", "text", (c) => c.notNull().defaultTo("{}")).execute();
        await db.schema.alterTable("workers").addColumn("triggers", "text", (c) => c.notNull().defaultTo("{}")).execute();

        await db.schema
          .createTable("worker_analytics")
          .addColumn("id", dialect === "postgres" ? "serial" : "integer", (c) =>
            dialect === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn("account_id", "text", (c) => c.notNull())
          .addColumn("dataset", "text", (c) => c.notNull())
          .addColumn("written_at", "text", (c) => c.notNull())
          .addColumn("index1", "text", (c) => c.notNull().defaultTo(""))
          .addColumn("blobs", "text", (c) => c.notNull().defaultTo("[]"))
          .addColumn("doubles", "text", (c) => c.notNull().defaultTo("[]"))
          .execute();
        // queries read one dataset over a time range
        await db.schema.createIndex("worker_analytics_dataset_index").on("worker_analytics").columns(["account_id", "dataset", "written_at"]).execute();

        await db.schema
          .createTable("worker_queue_messages")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("account_id", "text", (c) => c.notNull())
          .addColumn("queue", "text", (c) => c.notNull())
          .addColumn("content_type", "text", (c) => c.notNull())
          .addColumn("body", "text", (c) => c.notNull())
          .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("visible_at", "text", (c) => c.notNull())
          .addColumn("claimed_until", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .execute();
        // the dispatcher claims the oldest visible messages of one queue
        await db.schema.createIndex("worker_queue_messages_queue_index").on("worker_queue_messages").columns(["account_id", "queue", "visible_at"]).execute();
      },
    },
    "0008_event_columns": {
      // The activity log and analytics (issue 10): authentication verdicts, spam score, the
      // deciding upstream reply and the accepting destinations become columns (they were only
      // in `detail` JSON), so they can be filtered and shown without parsing every row; old
      // outcome words are rewritten to the vocabulary of analytics/event-outcome.ts; and
      // indexes keep per-zone summaries and newest-first pages fast with millions of events.
      async up(db: MigrationDb): Promise<void> {
        for (const column of ["spf", "dkim", "dmarc", "arc", "upstream", "destinations"]) {
          await db.schema.alterTable("events").addColumn(column, "text").execute();
        }
        await db.schema.alterTable("events").addColumn("spam_score", dialect === "postgres" ? "double precision" : "real").execute();
        await sql`UPDATE events SET outcome = CASE
            WHEN outcome IN ('delivered', 'partial') THEN 'forwarded'
            WHEN outcome = 'failed' THEN 'delivery_failed'
            WHEN outcome IN ('rejected', 'refused') AND reply_code >= 400 AND reply_code < 500 THEN 'deferred'
            WHEN outcome = 'refused' THEN 'rejected'
            WHEN outcome = 'dropped' AND action = 'worker' THEN 'worker'
            ELSE outcome END
          WHERE outcome IN ('delivered', 'partial', 'failed', 'refused', 'rejected', 'dropped')`.execute(db);
        // Summary: an index-only range scan per zone (bucket and outcome read from the index).
        await db.schema.createIndex("events_zone_received_outcome_index").on("events").columns(["zone", "account_id", "received_at", "outcome"]).execute();
        // Activity pages: newest first within a zone.
        await db.schema.createIndex("events_zone_id_index").on("events").columns(["zone", "account_id", "id"]).execute();
      },
    },
    "0009_cluster": {
      // Cluster mode (issue 13): keys and secrets that were files in each node's data directory
      // become rows every node shares, sealed with the operator's cluster key (AES-256-GCM, the
      // key's id beside each value so a wrong key is named, not mistaken for corruption); a lease
      // row per housekeeping job so one node at a time purges; and the node that wrote each event.
      async up(db: MigrationDb): Promise<void> {
        await db.schema
          .createTable("cluster_secrets")
          .addColumn("name", "text", (c) => c.primaryKey())
          .addColumn("key_id", "text", (c) => c.notNull())
          .addColumn("sealed", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("leases")
          .addColumn("name", "text", (c) => c.primaryKey())
          .addColumn("holder", "text", (c) => c.notNull())
          .addColumn("expires_at", "text", (c) => c.notNull())
          .execute();
        await db.schema.alterTable("events").addColumn("node_id", "text").execute();
        if (dialect === "postgres") {
          // Every config_version bump, from any process and any build, notifies the listening
          // nodes (store/config-listener.ts). NOTIFY inside the bumping transaction is delivered
          // only when it commits, so a node never reloads before the change is visible.
          await sql`CREATE FUNCTION mailroute_config_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM pg_notify('mailroute_config', NEW.version::text);
              RETURN NEW;
            END $$`.execute(db);
          await sql`CREATE TRIGGER config_version_notify AFTER UPDATE ON config_version
            FOR EACH ROW EXECUTE FUNCTION mailroute_config_notify()`.execute(db);
        }
      },
    },
    "0010_delivery_queue": {
      up: (db: MigrationDb) => deliveryQueueUp(db, dialect),
    },
    "0011_event_rollups": {
      up: (db: MigrationDb) => eventRollupsUp(db),
    },
  };
}

export function createMigrationProvider(dialect: StoreDialect): MigrationProvider {
  const migrations = defineMigrations(dialect);
  return {
    async getMigrations() {
      return migrations;
    },
  };
}

/** Names of the migrations this build knows, in the order they apply. */
export const migrationNames: readonly string[] = Object.keys(defineMigrations("sqlite")).sort();

export async function migrateToLatest(
  db: MigrationDb,
  dialect: StoreDialect,
  provider: MigrationProvider = createMigrationProvider(dialect),
): Promise<void> {
  // Kysely's Migrator reports failure as a result, not an exception; make it one.
  const { error, results = [] } = await new Migrator({ db, provider }).migrateToLatest();
  if (error === undefined) return;
  const failed = results.find((result) => result.status === "Error");
  const reason = error instanceof Error ? error.message : String(error);
  throw new Error(
    failed
      ? `migration "${failed.migrationName}" failed: ${reason}`
      : `migrations could not start (${dialect}): ${reason}`,
    { cause: error },
  );
}
