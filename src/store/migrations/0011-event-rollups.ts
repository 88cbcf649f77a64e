/**
 * 0011_event_rollups (issue 10): hourly counts per zone, account and outcome, kept as events are
 * recorded (event-repository.ts `insertEvents`, in the same transaction), so a 30-day summary
 * reads at most 720 rows per outcome instead of counting a million events. Existing events are
 * counted once here.
 */
import { sql, type Kysely } from "kysely";

// Kysely<any>: a frozen snapshot of the schema as it was then (see migrations.ts)
export async function eventRollupsUp(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("event_hourly")
    .addColumn("zone", "text", (c) => c.notNull())
    // "" for events whose zone had no account when recorded (never read by a summary)
    .addColumn("account_id", "text", (c) => c.notNull())
    // "YYYY-MM-DDTHH", the first 13 characters of received_at
    .addColumn("hour", "text", (c) => c.notNull())
    .addColumn("outcome", "text", (c) => c.notNull())
    .addColumn("count", "integer", (c) => c.notNull())
    .addPrimaryKeyConstraint("event_hourly_pk", ["zone", "account_id", "hour", "outcome"])
    .execute();
  await sql`INSERT INTO event_hourly (zone, account_id, hour, outcome, count)
    SELECT zone, COALESCE(account_id, ''), substr(received_at, 1, 13), outcome, COUNT(*)
    FROM events WHERE zone IS NOT NULL
    GROUP BY zone, COALESCE(account_id, ''), substr(received_at, 1, 13), outcome`.execute(db);
  // activity pages filtered by outcome, newest first, without walking the zone's other events
  await db.schema.createIndex("events_zone_outcome_id_index").on("events").columns(["zone", "account_id", "outcome", "id"]).execute();
}
