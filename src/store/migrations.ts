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
