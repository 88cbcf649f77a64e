/**
 * 0005_delivery_intent: Exactly-once across crashes (issue 8 item 9): before the final dot goes to a
 * destination, a durable intent says "this message may be arriving there"; the ledger's
 * acceptance confirms it after the 250. A retry that finds an intent without an
 * acceptance knows the message was maybe delivered, never that it was not.
 *
 * Moved out of migrations.ts unchanged (a released migration is never edited, only kept).
 */
import type { Kysely } from "kysely";

// Kysely<any>: a frozen snapshot of the schema as it was then (see migrations.ts)
export async function deliveryIntentUp(db: Kysely<any>): Promise<void> {
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
}
