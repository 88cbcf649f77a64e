/**
 * 0008_event_columns: The activity log and analytics (issue 10): authentication verdicts, spam score, the
 * deciding upstream reply and the accepting destinations become columns (they were only
 * in `detail` JSON), so they can be filtered and shown without parsing every row; old
 * outcome words are rewritten to the vocabulary of analytics/event-outcome.ts; and
 * indexes keep per-zone summaries and newest-first pages fast with millions of events.
 *
 * Moved out of migrations.ts unchanged (a released migration is never edited, only kept).
 */
import { sql, type Kysely } from "kysely";
import type { StoreDialect } from "../store.ts";

// Kysely<any>: a frozen snapshot of the schema as it was then (see migrations.ts)
export async function eventColumnsUp(db: Kysely<any>, dialect: StoreDialect): Promise<void> {
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
}
