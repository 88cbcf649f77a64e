/**
 * The activity log's reads (events are written by analytics/event-recorder). SQL only.
 * Per-zone reads ride the indexes of migration 0008: (zone, account_id, id) for newest-first
 * pages and (zone, account_id, received_at, outcome) for summaries, which SQLite and PostgreSQL answer from the
 * index alone.
 */
import { sql, type Insertable, type Kysely, type Selectable } from "kysely";
import { prepareQuery, preparedFor, type PreparedQuery } from "../prepared-query.ts";
import type { Database, EventTable } from "../schema.ts";
import type { StoreWriter, WriterStatement } from "../sqlite-writer.ts";

export type EventRow = Selectable<EventTable>;

export interface EventQuery {
  /** null: every account (the operator's CLI view). */
  account: string | null;
  since?: string;
  until?: string;
  outcome?: string;
  to?: string;
  from?: string;
  limit: number;
}

export function listEvents(db: Kysely<Database>, query: EventQuery): Promise<EventRow[]> {
  let q = db.selectFrom("events").selectAll();
  if (query.account !== null) q = q.where("account_id", "=", query.account);
  if (query.since !== undefined) q = q.where("received_at", ">=", query.since);
  if (query.until !== undefined) q = q.where("received_at", "<", query.until);
  if (query.outcome !== undefined) q = q.where("outcome", "=", query.outcome);
  if (query.to !== undefined) q = q.where(sql<string>`lower(rcpt_to)`, "=", query.to.toLowerCase());
  if (query.from !== undefined) q = q.where(sql<string>`lower(mail_from)`, "=", query.from.toLowerCase());
  return q.orderBy("id", "desc").limit(query.limit).execute();
}

/** The newest events of every zone (tests and operator tools). */
export function recentEvents(db: Kysely<Database>, limit = 20): Promise<EventRow[]> {
  return db.selectFrom("events").selectAll().orderBy("id", "desc").limit(limit).execute();
}

export interface ZoneEventFilter {
  account: string;
  zone: string;
  /** ISO timestamps, `until` exclusive. */
  since?: string;
  until?: string;
  outcome?: string;
  to?: string;
  from?: string;
  /** Substring of the subject, sender or recipient, any case. */
  q?: string;
}

function filtered(db: Kysely<Database>, filter: ZoneEventFilter) {
  let q = db.selectFrom("events").where("zone", "=", filter.zone).where("account_id", "=", filter.account);
  if (filter.since !== undefined) q = q.where("received_at", ">=", filter.since);
  if (filter.until !== undefined) q = q.where("received_at", "<", filter.until);
  if (filter.outcome !== undefined) q = q.where("outcome", "=", filter.outcome);
  if (filter.to !== undefined) q = q.where(sql<string>`lower(rcpt_to)`, "=", filter.to.toLowerCase());
  if (filter.from !== undefined) q = q.where(sql<string>`lower(mail_from)`, "=", filter.from.toLowerCase());
  if (filter.q !== undefined && filter.q !== "") {
    // LIKE's own wildcards in the search text match themselves.
    const pattern = `%${filter.q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    q = q.where((eb) =>
      eb.or([
        eb(sql<string>`lower(coalesce(subject, ''))`, "like", sql<string>`${pattern} escape '\\'`),
        eb(sql<string>`lower(mail_from)`, "like", sql<string>`${pattern} escape '\\'`),
        eb(sql<string>`lower(rcpt_to)`, "like", sql<string>`${pattern} escape '\\'`),
      ]),
    );
  }
  return q;
}

/** Past this many matches a text-filtered total is reported as this many (counting a million rows per page is not paging). */
export const MAX_COUNTED = 10_000;

function onTheHour(time: string | undefined): boolean {
  return time === undefined || time.endsWith(":00:00.000Z");
}

/**
 * One page, newest first (or oldest first), and the total. The total comes from the hourly
 * rollups whenever the filter is one they answer exactly (zone, outcome, whole hours), else from
 * counting at most MAX_COUNTED matching rows.
 */
export async function listZoneEvents(db: Kysely<Database>, filter: ZoneEventFilter, page: { limit: number; offset: number; oldestFirst?: boolean }): Promise<{ rows: EventRow[]; total: number }> {
  const rows = await filtered(db, filter).selectAll().orderBy("id", page.oldestFirst === true ? "asc" : "desc").limit(page.limit).offset(page.offset).execute();
  const textual = filter.to !== undefined || filter.from !== undefined || (filter.q !== undefined && filter.q !== "");
  if (!textual && onTheHour(filter.since) && onTheHour(filter.until)) {
    let q = db.selectFrom("event_hourly").select((eb) => eb.fn.sum<string | number>("count").as("n")).where("zone", "=", filter.zone).where("account_id", "=", filter.account);
    if (filter.outcome !== undefined) q = q.where("outcome", "=", filter.outcome);
    if (filter.since !== undefined) q = q.where("hour", ">=", filter.since.slice(0, 13));
    if (filter.until !== undefined) q = q.where("hour", "<", filter.until.slice(0, 13));
    return { rows, total: Number((await q.executeTakeFirst())?.n ?? 0) };
  }
  const capped = filtered(db, filter).select("id").limit(MAX_COUNTED).as("capped");
  const counted = await db.selectFrom(capped).select((eb) => eb.fn.countAll<string | number>().as("n")).executeTakeFirst();
  return { rows, total: Number(counted?.n ?? 0) };
}

/** What events can be grouped by (GraphQL emailRoutingAdaptiveGroups dimensions). */
export const GROUP_DIMENSIONS = ["action", "status", "date", "datetimeHour", "spf", "dkim", "dmarc", "arc"] as const;
export type GroupDimension = (typeof GROUP_DIMENSIONS)[number];

const DIMENSION_SQL: Readonly<Record<GroupDimension, string>> = Object.freeze({
  action: "action",
  status: "outcome",
  date: "substr(received_at, 1, 10)",
  datetimeHour: "substr(received_at, 1, 13)",
  spf: "spf",
  dkim: "dkim",
  dmarc: "dmarc",
  arc: "arc",
});

/** Counts of the zone's events grouped by `dimensions` (each a fixed expression: no input reaches the SQL). */
export async function groupZoneEvents(db: Kysely<Database>, filter: ZoneEventFilter, dimensions: readonly GroupDimension[], limit: number): Promise<({ count: number } & Partial<Record<GroupDimension, string | null>>)[]> {
  let q = filtered(db, filter).select((eb) => eb.fn.countAll<string | number>().as("count"));
  for (const dimension of dimensions) {
    const expression = sql<string | null>`${sql.raw(DIMENSION_SQL[dimension])}`;
    q = q.select(expression.as(dimension)).groupBy(expression) as typeof q;
  }
  const rows = (await q.orderBy(sql`count(*)`, "desc").limit(limit).execute()) as unknown as Record<string, unknown>[];
  return rows.map((row) => {
    const out: { count: number } & Partial<Record<GroupDimension, string | null>> = { count: Number(row["count"]) };
    for (const dimension of dimensions) out[dimension] = (row[dimension] as string | null) ?? null;
    return out;
  });
}

export function findZoneEvent(db: Kysely<Database>, account: string, zone: string, id: number): Promise<EventRow | undefined> {
  return db.selectFrom("events").selectAll().where("id", "=", id).where("zone", "=", zone).where("account_id", "=", account).executeTakeFirst();
}

export interface OutcomeCount {
  /** The first `bucketChars` characters of received_at (e.g. "2026-12-06T04" for hours). */
  bucket: string;
  outcome: string;
  count: number;
}

/**
 * Counts per bucket (hour: 13 characters of the time, day: 10) and outcome since `since`, from
 * the hourly rollups (migration 0011): at most one row per hour and outcome, whatever the
 * number of events. `since` is taken at its hour.
 */
export async function countZoneOutcomes(db: Kysely<Database>, account: string, zone: string, since: string, bucketChars: 10 | 13): Promise<OutcomeCount[]> {
  const bucket = sql<string>`substr(hour, 1, ${sql.lit(bucketChars)})`;
  const rows = await db
    .selectFrom("event_hourly")
    .select([bucket.as("bucket"), "outcome", (eb) => eb.fn.sum<string | number>("count").as("n")])
    .where("zone", "=", zone)
    .where("account_id", "=", account)
    .where("hour", ">=", since.slice(0, 13))
    .groupBy([bucket, "outcome"])
    .execute();
  return rows.map((row) => ({ bucket: row.bucket, outcome: row.outcome, count: Number(row.n) }));
}

/**
 * Records events and counts them into the hourly rollups in one transaction, so a summary
 * never disagrees with the activity log it summarises.
 */
export async function insertEvents(db: Kysely<Database>, rows: readonly Insertable<EventTable>[]): Promise<void> {
  if (rows.length === 0) return;
  const counts = hourlyCounts(rows);
  await db.transaction().execute(async (trx) => {
    await trx.insertInto("events").values([...rows]).execute();
    if (counts.length === 0) return;
    await addToHourly(trx, counts).execute();
  });
}

/** Adds counts to the hourly rollups (a new row, or the count added to the row there is). */
function addToHourly(db: Kysely<Database>, counts: Insertable<Database["event_hourly"]> | Insertable<Database["event_hourly"]>[]) {
  return db
    .insertInto("event_hourly")
    .values(counts)
    .onConflict((oc) => oc.columns(["zone", "account_id", "hour", "outcome"]).doUpdateSet((eb) => ({ count: eb("event_hourly.count", "+", eb.ref("excluded.count")) })));
}

/**
 * insertEvents through the store writer (SQLite: its thread, or this one's group commit): the same rows and counts in one transaction
 * there, as prepared statements (one per row and one per count), so the SMTP thread neither
 * builds nor runs them.
 */
export async function insertEventsOnWriter(db: Kysely<Database>, writer: StoreWriter, rows: readonly Insertable<EventTable>[]): Promise<void> {
  if (rows.length === 0) return;
  const statements: WriterStatement[] = [];
  const prepared = eventStatementsFor(db);
  for (const row of rows) {
    // as Kysely does, a column given as undefined is left out (its default applies)
    const columns = Object.keys(row).filter((column) => (row as Record<string, unknown>)[column] !== undefined);
    const key = columns.join(",");
    let insert = prepared.inserts.get(key);
    if (insert === undefined) {
      insert = prepareQuery(columns.length, (...slots) => db.insertInto("events").values(Object.fromEntries(columns.map((column, index) => [column, slots[index]])) as unknown as Insertable<EventTable>));
      prepared.inserts.set(key, insert);
    }
    statements.push({ sql: insert.sql, parameters: insert.parameters(columns.map((column) => (row as Record<string, unknown>)[column])) });
  }
  for (const count of hourlyCounts(rows)) {
    statements.push({ sql: prepared.hourly.sql, parameters: prepared.hourly.parameters([count.zone, count.account_id, count.hour, count.outcome, count.count]) });
  }
  await writer.run(statements, { transaction: true });
}

const eventStatementsFor = preparedFor((db: Kysely<Database>) => ({
  /** One-row inserts by their column list (the recorder's rows all have the same few). */
  inserts: new Map<string, PreparedQuery<readonly unknown[]>>(),
  hourly: prepareQuery<readonly unknown[]>(5, (zone, account, hour, outcome, count) => addToHourly(db, { zone: zone!, account_id: account!, hour: hour!, outcome: outcome!, count: count as unknown as number })),
}));

/** The hourly rollups' increments for `rows`: one per zone, account, hour and outcome. */
function hourlyCounts(rows: readonly Insertable<EventTable>[]): { zone: string; account_id: string; hour: string; outcome: string; count: number }[] {
  const counts = new Map<string, { zone: string; account_id: string; hour: string; outcome: string; count: number }>();
  for (const row of rows) {
    if (row.zone === null || row.zone === undefined) continue;
    const entry = { zone: row.zone, account_id: row.account_id ?? "", hour: row.received_at.slice(0, 13), outcome: row.outcome };
    const key = JSON.stringify(entry);
    const existing = counts.get(key);
    if (existing !== undefined) existing.count += 1;
    else counts.set(key, { ...entry, count: 1 });
  }
  return [...counts.values()];
}

/** Deletes events, and their hourly counts, from before `before`; returns how many events. */
export async function deleteEventsBefore(db: Kysely<Database>, before: Date): Promise<number> {
  const at = before.toISOString();
  const result = await db.deleteFrom("events").where("received_at", "<", at).executeTakeFirst();
  await db.deleteFrom("event_hourly").where("hour", "<", at.slice(0, 13)).execute();
  return Number(result.numDeletedRows);
}
