/**
 * Zones (the domains routed here) and their catch-alls. SQL only: callers in core/zones and
 * core/catch-all validate and audit. A zone name is unique across the installation, because
 * the SMTP server finds a zone by name alone.
 */
import type { Insertable, Kysely, Selectable, Updateable } from "kysely";
import type { CatchAllTable, Database, ZoneTable } from "../schema.ts";

export type ZoneRow = Selectable<ZoneTable>;
export type CatchAllRow = Selectable<CatchAllTable>;

export interface ZoneFilter {
  account: string;
  name?: string;
}

export function listZones(db: Kysely<Database>, filter: ZoneFilter, page?: { limit: number; offset: number }): Promise<ZoneRow[]> {
  let query = db.selectFrom("zones").selectAll().where("account_id", "=", filter.account);
  if (filter.name !== undefined) query = query.where("name", "=", filter.name);
  query = query.orderBy("name");
  if (page !== undefined) query = query.limit(page.limit).offset(page.offset);
  return query.execute();
}

export async function countZones(db: Kysely<Database>, filter: ZoneFilter): Promise<number> {
  let query = db.selectFrom("zones").select((eb) => eb.fn.countAll<number | string>().as("n")).where("account_id", "=", filter.account);
  if (filter.name !== undefined) query = query.where("name", "=", filter.name);
  return Number((await query.executeTakeFirstOrThrow()).n);
}

export function findZoneById(db: Kysely<Database>, account: string, id: string): Promise<ZoneRow | undefined> {
  return db.selectFrom("zones").selectAll().where("account_id", "=", account).where("id", "=", id).executeTakeFirst();
}

export function findZoneByName(db: Kysely<Database>, account: string, name: string): Promise<ZoneRow | undefined> {
  return db.selectFrom("zones").selectAll().where("account_id", "=", account).where("name", "=", name).executeTakeFirst();
}

/** Whether any account routes this name (zone names are unique installation-wide). */
export async function zoneNameTaken(db: Kysely<Database>, name: string): Promise<boolean> {
  return (await db.selectFrom("zones").select("id").where("name", "=", name).executeTakeFirst()) !== undefined;
}

export async function insertZone(db: Kysely<Database>, row: Insertable<ZoneTable>): Promise<void> {
  await db.insertInto("zones").values(row).execute();
}

export async function updateZone(db: Kysely<Database>, id: string, patch: Updateable<ZoneTable>): Promise<void> {
  await db.updateTable("zones").set(patch).where("id", "=", id).execute();
}

export async function deleteZoneCascade(db: Kysely<Database>, id: string): Promise<void> {
  // Explicit deletes rather than relying on cascades: SQLite enforces them only per connection setting.
  await db.deleteFrom("rules").where("zone_id", "=", id).execute();
  await db.deleteFrom("catch_alls").where("zone_id", "=", id).execute();
  await db.deleteFrom("zones").where("id", "=", id).execute();
}

export function findCatchAll(db: Kysely<Database>, zoneId: string): Promise<CatchAllRow | undefined> {
  return db.selectFrom("catch_alls").selectAll().where("zone_id", "=", zoneId).executeTakeFirst();
}

export async function upsertCatchAll(db: Kysely<Database>, row: Insertable<CatchAllTable>, exists: boolean): Promise<void> {
  if (exists) await db.updateTable("catch_alls").set(row).where("zone_id", "=", row.zone_id).execute();
  else await db.insertInto("catch_alls").values(row).execute();
}

/** Every zone of the installation: the routing table's view. */
export function listAllZones(db: Kysely<Database>): Promise<ZoneRow[]> {
  return db.selectFrom("zones").selectAll().execute();
}

export function listAllCatchAlls(db: Kysely<Database>): Promise<CatchAllRow[]> {
  return db.selectFrom("catch_alls").selectAll().execute();
}

/** The account routing a domain name, if any. */
export async function findZoneOwner(db: Kysely<Database>, name: string): Promise<string | undefined> {
  return (await db.selectFrom("zones").select("account_id").where("name", "=", name).executeTakeFirst())?.account_id;
}

/** The account owning a zone id, if any (the API resolves /zones/{id} before it knows the account). */
export async function findZoneOwnerById(db: Kysely<Database>, id: string): Promise<string | undefined> {
  return (await db.selectFrom("zones").select("account_id").where("id", "=", id).executeTakeFirst())?.account_id;
}
