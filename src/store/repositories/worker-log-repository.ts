/**
 * Worker console lines (`worker_logs`) that `worker tail` reads. SQL only: appending keeps the
 * newest `retention` lines per worker in the same transaction, so the table stays bounded.
 */
import type { Insertable, Kysely } from "kysely";
import type { Database, WorkerLogTable } from "../schema.ts";

export interface WorkerLogRow {
  id: number;
  worker: string;
  at: string;
  level: string;
  message: string;
}

export async function appendWorkerLogs(db: Kysely<Database>, account: string, worker: string, rows: Omit<Insertable<WorkerLogTable>, "account_id" | "worker">[], retention: number): Promise<void> {
  if (rows.length === 0) return;
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto("worker_logs")
      .values(rows.map((row) => ({ ...row, account_id: account, worker })))
      .execute();
    // Everything older than the newest `retention` lines; nothing when there are fewer.
    const oldestKept = await trx.selectFrom("worker_logs").select("id").where("account_id", "=", account).where("worker", "=", worker).orderBy("id", "desc").offset(retention - 1).limit(1).executeTakeFirst();
    if (oldestKept !== undefined) {
      await trx.deleteFrom("worker_logs").where("account_id", "=", account).where("worker", "=", worker).where("id", "<", oldestKept.id).execute();
    }
  });
}

/** Oldest first: the newest `limit`, or with `after`, the next `limit` with a greater id. */
export async function readWorkerLogs(db: Kysely<Database>, account: string, worker: string, options: { after?: number; limit: number }): Promise<WorkerLogRow[]> {
  const base = db.selectFrom("worker_logs").select(["id", "worker", "at", "level", "message"]).where("account_id", "=", account).where("worker", "=", worker);
  const rows =
    options.after === undefined
      ? (await base.orderBy("id", "desc").limit(options.limit).execute()).reverse()
      : await base.where("id", ">", options.after).orderBy("id").limit(options.limit).execute();
  return rows.map((row) => ({ ...row, id: Number(row.id) }));
}

export async function deleteWorkerLogs(db: Kysely<Database>, account: string, worker: string): Promise<void> {
  await db.deleteFrom("worker_logs").where("account_id", "=", account).where("worker", "=", worker).execute();
}
