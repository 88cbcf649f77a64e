/**
 * 0006_zone_signing: Per-zone opt-out of DKIM signing and ARC sealing (issue 11): a zone whose mail goes
 * by --transport to the operator's own server needs no signature of ours, and signing is
 * the largest CPU cost per message. On by default: every other zone keeps signing.
 *
 * Moved out of migrations.ts unchanged (a released migration is never edited, only kept).
 */
import type { Kysely } from "kysely";

// Kysely<any>: a frozen snapshot of the schema as it was then (see migrations.ts)
export async function zoneSigningUp(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("zones").addColumn("sign_outbound", "integer", (c) => c.notNull().defaultTo(1)).execute();
}
