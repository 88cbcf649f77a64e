/**
 * Routing rules (custom addresses) of a zone. SQL only; core/rules validates and audits.
 */
import { sql, SqliteAdapter, type Insertable, type Kysely, type Selectable, type Updateable } from "kysely";
import type { Database, RuleTable } from "../schema.ts";

export type RuleRow = Selectable<RuleTable> & { zone_name: string; account_id: string };

export interface RuleFilter {
  account: string;
  zoneId?: string;
  enabled?: boolean;
}

function filtered(db: Kysely<Database>, filter: RuleFilter) {
  let query = db.selectFrom("rules").innerJoin("zones", "zones.id", "rules.zone_id").where("zones.account_id", "=", filter.account);
  if (filter.zoneId !== undefined) query = query.where("rules.zone_id", "=", filter.zoneId);
  if (filter.enabled !== undefined) query = query.where("rules.enabled", "=", filter.enabled ? 1 : 0);
  return query;
}

export function listRules(db: Kysely<Database>, filter: RuleFilter, page?: { limit: number; offset: number }): Promise<RuleRow[]> {
  let query = filtered(db, filter).selectAll("rules").select(["zones.name as zone_name", "zones.account_id as account_id"]).orderBy("zones.name").orderBy("rules.priority").orderBy("rules.match_key");
  if (page !== undefined) query = query.limit(page.limit).offset(page.offset);
  return query.execute();
}

export async function countRules(db: Kysely<Database>, filter: RuleFilter): Promise<number> {
  return Number((await filtered(db, filter).select((eb) => eb.fn.countAll<number | string>().as("n")).executeTakeFirstOrThrow()).n);
}

export function findRuleById(db: Kysely<Database>, account: string, id: string): Promise<RuleRow | undefined> {
  return filtered(db, { account }).selectAll("rules").select(["zones.name as zone_name", "zones.account_id as account_id"]).where("rules.id", "=", id).executeTakeFirst();
}

export function findRuleByMatchKey(db: Kysely<Database>, zoneId: string, matchKey: string): Promise<Selectable<RuleTable> | undefined> {
  return db.selectFrom("rules").selectAll().where("zone_id", "=", zoneId).where("match_key", "=", matchKey).executeTakeFirst();
}

export async function insertRule(db: Kysely<Database>, row: Insertable<RuleTable>): Promise<void> {
  await db.insertInto("rules").values(row).execute();
}

export async function updateRule(db: Kysely<Database>, id: string, patch: Updateable<RuleTable>): Promise<void> {
  await db.updateTable("rules").set(patch).where("id", "=", id).execute();
}

export async function deleteRule(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom("rules").where("id", "=", id).execute();
}

// A page's rows must fit in the young generation to die there: the service caps it at 4 MiB per
// semi-space (bin/service-node-flags.js), and 20,000 rows (~6 MB) did not fit, so every page was
// copied and promoted. 1 M rules with the service's V8 flags: 20,000 rows a page 4.9–5.2 s and
// 422 MiB; 1,000 rows 3.0–3.4 s and 337–341 MiB (500 and 250: no better). On PostgreSQL a page
// read costs ~0.5 ms on loopback: ~0.5 s more for a million rules (the saving not measured there).
const ROUTING_PAGE_ROWS = 1_000;

/** Every rule of the installation: the routing table's view (its zone by id: the caller has the zones). */
export type RoutingRuleRow = Pick<Selectable<RuleTable>, "id" | "name" | "enabled" | "match_key" | "matchers" | "actions" | "delivery_mode" | "zone_id">;

/**
 * Every rule, with only what the routing table needs, a page at a time (keyset order): a million
 * rules are never held as rows all at once, and their rows die young instead of being promoted
 * and collected together (most of the start-up time with a million custom addresses). Pages are
 * separate reads: a caller that needs one consistent picture checks the configuration version
 * around them (loadRoutingTable does).
 *
 * On SQLite the keyset is the rowid, the order rows are stored in. In id order every row was a
 * seek to another part of the table, ids being random: a million rules created by the service
 * took 5.4–6.3 s to read against 0.92–0.95 s in rowid order (issue 11; the bench's ids had been
 * made in ascending order, which hid it). PostgreSQL has no stable row position: there, by id.
 */
export async function* rulesForRouting(db: Kysely<Database>, pageSize = ROUTING_PAGE_ROWS): AsyncGenerator<RoutingRuleRow[]> {
  const position = db.getExecutor().adapter instanceof SqliteAdapter ? sql<number | string>`rules.rowid` : sql<number | string>`rules.id`;
  let after: number | string | null = null;
  for (;;) {
    let query = db
      .selectFrom("rules")
      .select(["rules.id", "rules.name", "rules.enabled", "rules.match_key", "rules.matchers", "rules.actions", "rules.delivery_mode", "rules.zone_id"])
      .select(position.as("position"))
      .orderBy(position)
      .limit(pageSize);
    if (after !== null) query = query.where(position, ">", after);
    const page = await query.execute();
    if (page.length > 0) yield page;
    if (page.length < pageSize) return;
    after = page[page.length - 1]!.position;
  }
}
