/**
 * Analytics Engine datasets: each writeDataPoint() of a worker becomes one stored point
 * (index1, blob1…blob20, double1…double20 as Cloudflare names the columns), read back by
 * `mailroute worker analytics <dataset>`.
 *
 * Promises: a point is stored as the worker gave it (the runtime already checked Cloudflare's
 * limits: 1 index, 20 blobs, 20 doubles; a non-finite double is stored as null); reads are per
 * account and dataset, newest first, bounded by `limit`; points older than the retention are
 * purged (Cloudflare keeps 3 months). Writes come from running workers, so they are data, not
 * configuration: not audited (see runtime-workers.ts for why).
 */
import type { Kysely } from "kysely";
import { deleteDataPointsBefore, insertDataPoint, listDataPoints } from "../../store/repositories/worker-analytics-repository.ts";
import type { Database } from "../../store/schema.ts";

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
  await insertDataPoint(db, {
    account_id: account,
    dataset,
    written_at: now.toISOString(),
    index1: point.indexes[0] ?? "",
    blobs: JSON.stringify(point.blobs),
    doubles: JSON.stringify(point.doubles.map((value) => (Number.isFinite(value) ? value : null))),
  });
}

export async function readDataPoints(db: Kysely<Database>, account: string, dataset: string, options: { since?: Date; index?: string; limit?: number } = {}): Promise<StoredDataPoint[]> {
  const rows = await listDataPoints(db, account, dataset, { since: options.since?.toISOString(), index: options.index, limit: options.limit ?? 100 });
  return rows.map((row) => ({ timestamp: row.written_at, index1: row.index1, blobs: JSON.parse(row.blobs) as (string | null)[], doubles: JSON.parse(row.doubles) as number[] }));
}

export async function purgeOldDataPoints(db: Kysely<Database>, now = new Date()): Promise<void> {
  await deleteDataPointsBefore(db, new Date(now.getTime() - ANALYTICS_RETENTION_DAYS * 86_400_000).toISOString());
}
