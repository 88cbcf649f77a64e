/**
 * The activity log's reads (events are written by analytics/event-recorder). SQL only.
 */
import type { Kysely, Selectable } from "kysely";
import type { Database, EventTable } from "../schema.ts";

export type EventRow = Selectable<EventTable>;

export interface EventQuery {
  /** null: every account (the operator's CLI view). */
  account: string | null;
  since?: string;
  outcome?: string;
  limit: number;
}

export function listEvents(db: Kysely<Database>, query: EventQuery): Promise<EventRow[]> {
  let q = db.selectFrom("events").selectAll();
  if (query.account !== null) q = q.where("account_id", "=", query.account);
  if (query.since !== undefined) q = q.where("received_at", ">=", query.since);
  if (query.outcome !== undefined) q = q.where("outcome", "=", query.outcome);
  return q.orderBy("id", "desc").limit(query.limit).execute();
}
