/**
 * Leases (table `leases`): a named job runs on one node at a time. SQL only; the renewing loop
 * is store/housekeeping-lease.ts.
 *
 * Promises: `acquireLease` succeeds for at most one holder while the lease is unexpired — the
 * check and the write are one statement (insert, or update only when the row is ours or has
 * expired), so two nodes asking at once cannot both win, on SQLite or PostgreSQL.
 */
import type { Kysely } from "kysely";
import type { Database } from "../schema.ts";

/** Takes or renews the lease until `until`; true when `holder` now holds it. */
export async function acquireLease(db: Kysely<Database>, name: string, holder: string, now: Date, until: Date): Promise<boolean> {
  const result = await db
    .insertInto("leases")
    .values({ name, holder, expires_at: until.toISOString() })
    .onConflict((oc) =>
      oc
        .column("name")
        .doUpdateSet({ holder, expires_at: until.toISOString() })
        // ours to renew, or abandoned by a node that stopped renewing (crashed, partitioned)
        .where((eb) => eb.or([eb("leases.holder", "=", holder), eb("leases.expires_at", "<=", now.toISOString())])),
    )
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

/** Gives the lease up (only if `holder` still holds it), so another node need not wait for it to expire. */
export async function releaseLease(db: Kysely<Database>, name: string, holder: string): Promise<void> {
  await db.deleteFrom("leases").where("name", "=", name).where("holder", "=", holder).execute();
}

export async function leaseHolder(db: Kysely<Database>, name: string, now: Date): Promise<string | null> {
  const row = await db.selectFrom("leases").select("holder").where("name", "=", name).where("expires_at", ">", now.toISOString()).executeTakeFirst();
  return row?.holder ?? null;
}
