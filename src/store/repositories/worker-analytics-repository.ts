/**
 * Analytics Engine data points (`worker_analytics`): each writeDataPoint() of a worker is one
 * row (index1, blobs and doubles as JSON, as Cloudflare names the columns). SQL only.
 */
import type { Kysely } from "kysely";
import type { Database } from "../schema.ts";

export interface DataPointRow {
  written_at: string;
  index1: string;
  blobs: string;
  doubles: string;
}

export async function insertDataPoint(db: Kysely<Database>, row: { account_id: string; dataset: string; written_at: string; index1: string; blobs: string; doubles: string }): Promise<void> {
  await db.insertInto("worker_analytics").values(row).execute();
}

/** Newest first, per account and dataset. */
export function listDataPoints(db: Kysely<Database>, account: string, dataset: string, options: { since?: string; index?: string; limit: number }): Promise<DataPointRow[]> {
  let query = db.selectFrom("worker_analytics").select(["written_at", "index1", "blobs", "doubles"]).where("account_id", "=", account).where("dataset", "=", dataset);
  if (options.since !== undefined) query = query.where("written_at", ">=", options.since);
  if (options.index !== undefined) query = query.where("index1", "=", options.index);
  return query.orderBy("written_at", "desc").orderBy("id", "desc").limit(options.limit).execute();
}

export async function deleteDataPointsBefore(db: Kysely<Database>, before: string): Promise<void> {
  await db.deleteFrom("worker_analytics").where("written_at", "<", before).execute();
}
