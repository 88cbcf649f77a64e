/**
 * 0009_cluster: Cluster mode (issue 13): keys and secrets that were files in each node's data directory
 * become rows every node shares, sealed with the operator's cluster key (AES-256-GCM, the
 * key's id beside each value so a wrong key is named, not mistaken for corruption); a lease
 * row per housekeeping job so one node at a time purges; and the node that wrote each event.
 *
 * Moved out of migrations.ts unchanged (a released migration is never edited, only kept).
 */
import { sql, type Kysely } from "kysely";
import type { StoreDialect } from "../store.ts";

// Kysely<any>: a frozen snapshot of the schema as it was then (see migrations.ts)
export async function clusterUp(db: Kysely<any>, dialect: StoreDialect): Promise<void> {
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
}
