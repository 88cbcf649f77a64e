/**
 * Hourly housekeeping of a running node — expired ledger entries, KV values, Analytics Engine
 * data points, activity-log events past retention, R2 bytes no object uses any more — run by one
 * node at a time under the `housekeeping` lease (store/repositories/lease-repository.ts).
 *
 * Why a lease: on a PostgreSQL cluster every node would otherwise delete the same rows each
 * hour, contending for the same locks for nothing. The node holding the lease renews it at
 * each run (the lease outlives two intervals, so a node that dies is replaced within about
 * two hours, and one late tick does not hand the job over); the others only try to take it.
 * On SQLite the node is alone and always holds it. A failed purge is logged, never thrown:
 * housekeeping must not take the node down.
 */
import type { Kysely } from "kysely";
import { purgeOldEvents } from "../analytics/event-recorder.ts";
import type { Logger } from "../analytics/structured-log.ts";
import { purgeExpired } from "../store/delivery-ledger-store.ts";
import { acquireLease, releaseLease } from "../store/repositories/lease-repository.ts";
import type { Database } from "../store/schema.ts";
import { purgeOldDataPoints } from "../core/workers/worker-analytics.ts";
import { purgeExpiredKv } from "../core/kv/kv-namespaces.ts";
import { sweepR2 } from "../core/r2/r2-buckets.ts";

export const HOUSEKEEPING_LEASE = "housekeeping";

export interface HousekeepingOptions {
  db: Kysely<Database>;
  nodeId: string;
  logger: Logger;
  eventRetentionDays: number;
  intervalMs?: number;
}

export interface Housekeeping {
  /** One round now (if this node holds or takes the lease); true when it ran. */
  runOnce(now?: Date): Promise<boolean>;
  /** Stops the timer and gives the lease up, so another node takes over at its next tick. */
  stop(): Promise<void>;
}

export function startHousekeeping(options: HousekeepingOptions): Housekeeping {
  const { db, nodeId, logger } = options;
  const intervalMs = options.intervalMs ?? 3_600_000;
  async function runOnce(now = new Date()): Promise<boolean> {
    const held = await acquireLease(db, HOUSEKEEPING_LEASE, nodeId, now, new Date(now.getTime() + 2 * intervalMs + 60_000));
    if (!held) return false;
    await Promise.all([
      purgeExpired(db, now).catch((error: unknown) => logger.log("warn", "ledger_purge_failed", { error })),
      purgeExpiredKv(db, now).catch((error: unknown) => logger.log("warn", "kv_purge_failed", { error })),
      purgeOldDataPoints(db, now).catch((error: unknown) => logger.log("warn", "analytics_purge_failed", { error })),
      sweepR2(db, now).catch((error: unknown) => logger.log("warn", "r2_sweep_failed", { error })),
      purgeOldEvents(db, new Date(now.getTime() - options.eventRetentionDays * 86_400_000)).catch((error: unknown) => logger.log("warn", "events_purge_failed", { error })),
    ]);
    return true;
  }
  const timer = setInterval(() => {
    runOnce().catch((error: unknown) => logger.log("warn", "housekeeping_lease_failed", { error }));
  }, intervalMs);
  timer.unref();
  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      await releaseLease(db, HOUSEKEEPING_LEASE, nodeId).catch((error: unknown) => logger.log("warn", "housekeeping_release_failed", { error }));
    },
  };
}
