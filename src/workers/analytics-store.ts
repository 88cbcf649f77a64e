/**
 * Analytics Engine datasets in our store: each writeDataPoint() of a worker becomes one row
 * (index1, blob1…blob20, double1…double20 as Cloudflare names the columns), read back by
 * `mailroute worker analytics <dataset>`.
 *
 * Promises: a point is stored as the worker gave it (the runtime already checked Cloudflare's
 * limits: 1 index, 20 blobs, 20 doubles); reads are per account and dataset, newest first,
 * bounded by `limit`; points older than the retention are purged (Cloudflare keeps 3 months).
 */
import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";

export const ANALYTICS_RETENTION_DAYS = 92;

export interface DataPoint {
  indexes: string[];
  blobs: (string | null)[];
  doubles: number[];
}

export interface StoredDataPoint {
  timestamp: string;
  index1: string;
  blobs: (string | null)[];
  doubles: number[];
}

export async function writeDataPoint(db: Kysely<Database>, account: string, dataset: string, point: DataPoint, now = new Date()): Promise<void> {
  await db
    .insertInto("worker_analytics")
    .values({
      account_id: account,
      dataset,
      written_at: now.toISOString(),
      index1: point.indexes[0] ?? "",
      blobs: JSON.stringify(point.blobs),
      doubles: JSON.stringify(point.doubles.map((value) => (Number.isFinite(value) ? value : null))),
    })
    .execute();
}

export async function readDataPoints(db: Kysely<Database>, account: string, dataset: string, options: { since?: Date; index?: string; limit?: number } = {}): Promise<StoredDataPoint[]> {
  let query = db.selectFrom("worker_analytics").select(["written_at", "index1", "blobs", "doubles"]).where("account_id", "=", account).where("dataset", "=", dataset);
  if (options.since !== undefined) query = query.where("written_at", ">=", options.since.toISOString());
  if (options.index !== undefined) query = query.where("index1", "=", options.index);
  const rows = await query.orderBy("written_at", "desc").orderBy("id", "desc").limit(options.limit ?? 100).execute();
  return rows.map((row) => ({ timestamp: row.written_at, index1: row.index1, blobs: JSON.parse(row.blobs) as (string | null)[], doubles: JSON.parse(row.doubles) as number[] }));
}

export async function purgeOldDataPoints(db: Kysely<Database>, now = new Date()): Promise<void> {
  await db.deleteFrom("worker_analytics").where("written_at", "<", new Date(now.getTime() - ANALYTICS_RETENTION_DAYS * 86_400_000).toISOString()).execute();
}
