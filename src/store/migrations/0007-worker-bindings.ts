/**
 * 0007_worker_bindings: The Email Workers platform (issue 9): wrangler's extra modules, D1/R2/Queues/Analytics
 * Engine/AI bindings and fetch/queue triggers per worker; Analytics Engine data points;
 * queue messages until their consumer acknowledges them.
 *
 * Moved out of migrations.ts unchanged (a released migration is never edited, only kept).
 */
import type { Kysely } from "kysely";
import type { StoreDialect } from "../store.ts";

// Kysely<any>: a frozen snapshot of the schema as it was then (see migrations.ts)
export async function workerBindingsUp(db: Kysely<any>, dialect: StoreDialect): Promise<void> {
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
}
