/**
 * 0002_zone_auth_policy: Per-zone relaxations of inbound authentication (issue 3): on by default, as
 * Cloudflare enforces them; an operator can relax each for a zone with odd senders.
 *
 * Moved out of migrations.ts unchanged (a released migration is never edited, only kept).
 */
import type { Kysely } from "kysely";

// Kysely<any>: a frozen snapshot of the schema as it was then (see migrations.ts)
export async function zoneAuthPolicyUp(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("zones").addColumn("enforce_dmarc", "integer", (c) => c.notNull().defaultTo(1)).execute();
  await db.schema.alterTable("zones").addColumn("require_auth", "integer", (c) => c.notNull().defaultTo(1)).execute();
  await db.schema.alterTable("zones").addColumn("reject_quarantine", "integer", (c) => c.notNull().defaultTo(0)).execute();
  // Spam score (0–5) above which mail is refused; NULL never refuses on score alone.
  await db.schema.alterTable("zones").addColumn("spam_threshold", "real").execute();
}
