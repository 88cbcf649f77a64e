/**
 * 0012_rule_delivery_mode (issue 13): a rule may choose its own delivery mode ("relay" or
 * "queue"); NULL, the default, follows its zone's `delivery_mode` (migration 0010).
 */
import type { Kysely } from "kysely";

// Kysely<any>: a frozen snapshot of the schema as it was then (see migrations.ts)
export async function ruleDeliveryModeUp(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("rules").addColumn("delivery_mode", "text").execute();
}
