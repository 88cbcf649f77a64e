/**
 * 0003_workers: Email Workers (issue 4): deployed bundles with their bindings, encrypted secrets, the
 * KV namespaces workers read and write, and a bounded log for `worker tail`.
 *
 * Moved out of migrations.ts unchanged (a released migration is never edited, only kept).
 */
import { sql, type Kysely } from "kysely";
import type { StoreDialect } from "../store.ts";

// Kysely<any>: a frozen snapshot of the schema as it was then (see migrations.ts)
export async function workersUp(db: Kysely<any>, dialect: StoreDialect): Promise<void> {
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
}
