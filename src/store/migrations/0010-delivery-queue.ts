/**
 * 0010_delivery_queue (issue 13): the opt-in durable queue. A zone in `queue` delivery mode
 * answers 250 for a message some destination deferred only once the message (its exact signed
 * bytes, in chunks, so a large one is never one value in memory) and its remaining destination
 * chains are stored here; the queue runner retries them with backoff.
 *
 * Kept in a file of its own (the migration list had grown past 400 lines); the list in
 * migrations.ts imports it.
 */
import type { Kysely } from "kysely";
import type { StoreDialect } from "../store.ts";

// Kysely<any>: a frozen snapshot of the schema as it was then (see migrations.ts)
export async function deliveryQueueUp(db: Kysely<any>, dialect: StoreDialect): Promise<void> {
  await db.schema.alterTable("zones").addColumn("delivery_mode", "text", (c) => c.notNull().defaultTo("relay")).execute();
  await db.schema
    .createTable("queued_messages")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("zone", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("next_attempt_at", "text", (c) => c.notNull())
    .addColumn("expires_at", "text", (c) => c.notNull())
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    // chains delivered so far: a DSN is owed only when none ever was (as in-session: partial → 250)
    .addColumn("delivered", "integer", (c) => c.notNull().defaultTo(0))
    // the upstream envelope sender (SRS-rewritten), and the original one a DSN goes to ("" = null sender: none)
    .addColumn("envelope_from", "text", (c) => c.notNull())
    .addColumn("dsn_to", "text", (c) => c.notNull())
    // JSON: the addresses the sender used (a DSN names these, never the private destinations)
    .addColumn("recipients", "text", (c) => c.notNull())
    // JSON: the chains still to deliver, each in failover order
    .addColumn("chains", "text", (c) => c.notNull())
    .addColumn("fingerprint", "text", (c) => c.notNull())
    .addColumn("size", "integer", (c) => c.notNull())
    .addColumn("message_id", "text")
    .addColumn("subject", "text")
    .addColumn("last_reply", "text")
    .addColumn("claimed_by", "text")
    .addColumn("claim_expires_at", "text")
    .execute();
  await db.schema.createIndex("queued_messages_due_index").on("queued_messages").columns(["next_attempt_at"]).execute();
  await db.schema.createIndex("queued_messages_account_index").on("queued_messages").columns(["account_id", "created_at"]).execute();
  await db.schema
    .createTable("queued_message_chunks")
    .addColumn("message_id", "text", (c) => c.notNull())
    .addColumn("seq", "integer", (c) => c.notNull())
    .addColumn("data", dialect === "postgres" ? "bytea" : "blob", (c) => c.notNull())
    .addPrimaryKeyConstraint("queued_message_chunks_pk", ["message_id", "seq"])
    .execute();
}
