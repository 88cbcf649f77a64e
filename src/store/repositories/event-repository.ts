/**
 * The activity log's reads (events are written by analytics/event-recorder). SQL only.
 * Per-zone reads ride the indexes of migration 0008: (zone, account_id, id) for newest-first
 * pages and (zone, account_id, received_at, outcome) for summaries, which SQLite and PostgreSQL answer from the
 * index alone.
 */
import { sql, type Kysely, type Selectable } from "kysely";
import type { Database, EventTable } from "../schema.ts";

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

export async function listZoneEvents(db: Kysely<Database>, filter: ZoneEventFilter, page: { limit: number; offset: number }): Promise<{ rows: EventRow[]; total: number }> {
  const rows = await filtered(db, filter).selectAll().orderBy("id", "desc").limit(page.limit).offset(page.offset).execute();
  const counted = await filtered(db, filter).select((eb) => eb.fn.countAll<string | number>().as("n")).executeTakeFirst();
  return { rows, total: Number(counted?.n ?? 0) };
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

/** Events per time bucket and outcome since `since`; buckets are prefixes of the ISO timestamp. */
export async function countZoneOutcomes(db: Kysely<Database>, account: string, zone: string, since: string, bucketChars: 10 | 13): Promise<OutcomeCount[]> {
  const bucket = sql<string>`substr(received_at, 1, ${sql.lit(bucketChars)})`;
  const rows = await db
    .selectFrom("events")
    .select([bucket.as("bucket"), "outcome", (eb) => eb.fn.countAll<string | number>().as("n")])
    .where("zone", "=", zone)
    .where("received_at", ">=", since)
    .where("account_id", "=", account)
    .groupBy([bucket, "outcome"])
    .execute();
  return rows.map((row) => ({ bucket: row.bucket, outcome: row.outcome, count: Number(row.n) }));
}
