/**
 * 0001_initial
 *
 * Moved out of migrations.ts unchanged (a released migration is never edited, only kept).
 */
import { sql, type Kysely } from "kysely";
import type { StoreDialect } from "../store.ts";

// Kysely<any>: a frozen snapshot of the schema as it was then (see migrations.ts)
export async function initialUp(db: Kysely<any>, dialect: StoreDialect): Promise<void> {
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
}
