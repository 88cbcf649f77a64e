/**
 * The delivery ledger's storage: which destinations already accepted (250) a given message,
 * so a sender's retry after a partial failure is delivered only to the ones still missing.
 *
 * Promises: recording is idempotent (a repeat refreshes the entry); expired entries are
 * never reported, whether or not they have been purged yet. Timestamps are ISO-8601 UTC
 * strings from Date#toISOString, which sort lexicographically in time order, so expiry is
 * a plain string comparison on both databases.
 */
import type { Kysely } from "kysely";
import type { Database } from "./schema.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

export interface AcceptedDelivery {
  /** Message-ID + envelope + body hash, computed by the delivery layer. */
  fingerprint: string;
  destination: string;
  /** The upstream's 250 reply, kept for the activity log. */
  upstreamReply: string;
  now: Date;
  ttlDays: number;
}

export async function recordAccepted(db: Kysely<Database>, entry: AcceptedDelivery): Promise<void> {
  if (!(Number.isFinite(entry.ttlDays) && entry.ttlDays > 0)) {
    throw new Error(`delivery ledger: ttlDays ${entry.ttlDays} is not a positive number of days`);
  }
  const acceptedAt = entry.now.toISOString();
  const expiresAt = new Date(entry.now.getTime() + entry.ttlDays * DAY_MS).toISOString();
  await db
    .insertInto("delivery_ledger")
    .values({
      fingerprint: entry.fingerprint,
      destination: entry.destination,
      accepted_at: acceptedAt,
      expires_at: expiresAt,
      upstream_reply: entry.upstreamReply,
    })
    // Update rather than ignore: an expired-but-unpurged entry must come back to life when
    // the destination accepts again, or the next retry would deliver a duplicate.
    .onConflict((oc) =>
      oc.columns(["fingerprint", "destination"]).doUpdateSet({
        accepted_at: acceptedAt,
        expires_at: expiresAt,
        upstream_reply: entry.upstreamReply,
      }),
    )
    .execute();
}

/** Destinations that accepted this message and whose entry has not expired at `now`. */
export async function acceptedDestinations(db: Kysely<Database>, fingerprint: string, now: Date): Promise<Set<string>> {
  const rows = await db
    .selectFrom("delivery_ledger")
    .select("destination")
    .where("fingerprint", "=", fingerprint)
    .where("expires_at", ">", now.toISOString())
    .execute();
  return new Set(rows.map((row) => row.destination));
}

/** Deletes entries expired at `now`; returns how many. */
export async function purgeExpired(db: Kysely<Database>, now: Date): Promise<number> {
  const { numDeletedRows } = await db
    .deleteFrom("delivery_ledger")
    .where("expires_at", "<=", now.toISOString())
    .executeTakeFirst();
  return Number(numDeletedRows);
}
