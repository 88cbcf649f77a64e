/**
 * 0004_control_plane: Accounts, API tokens, the audit log and verification links (issue 7): the control
 * plane that the REST API, the CLI and the dashboard share.
 *
 * Moved out of migrations.ts unchanged (a released migration is never edited, only kept).
 */
import type { Kysely } from "kysely";

// Kysely<any>: a frozen snapshot of the schema as it was then (see migrations.ts)
export async function controlPlaneUp(db: Kysely<any>): Promise<void> {
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
}
