/**
 * The delivery ledger's storage: which destinations already accepted (250) a given message,
 * so a sender's retry after a partial failure is delivered only to the ones still missing —
 * and, since migration 0005, which destinations a message may be arriving at right now.
 *
 * Two facts per (message fingerprint, destination):
 * - an acceptance (`delivery_ledger`), recorded right after the destination's 250;
 * - an intent (`delivery_intents`), claimed before the final dot: "sending" while the attempt
 *   may be live (until `settles_at`), "maybe-delivered" once it ended after its dot without a
 *   250. An attempt that ended before its dot deletes its intent; one that crashed leaves it
 *   "sending", and after `settles_at` that too reads as maybe delivered.
 * So: acceptance → delivered; intent → maybe delivered; neither → certainly not delivered.
 *
 * An intent's attempt id starts with its owner, the node id of the process making the attempt
 * (`<node>/<attempt>`, when the ledger is given one): a process that starts under a node id
 * knows every "sending" intent of that id is its dead predecessor's (one process per node id),
 * and settles them as maybe delivered at once (`settleIntentsOfOwner`), so a sender's retry is
 * sent again now instead of being held until the dead attempt's deadline (minutes).
 *
 * Promises: recording is idempotent (a repeat refreshes the entry); expired entries are
 * never reported, whether or not they have been purged yet; a claim succeeds for one attempt
 * at a time per (message, destination) — an insert, or taking over an intent whose
 * `settles_at` has passed, decided by the database in one statement, so two processes (or
 * nodes) cannot both win; only the attempt holding an intent settles it. Timestamps are
 * ISO-8601 UTC strings from Date#toISOString, which sort lexicographically in time order, so
 * expiry is a plain string comparison on both databases.
 */
import { sql, type Kysely } from "kysely";
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

export type IntentState = "sending" | "maybe-delivered";

export interface LedgerView {
  /** Destinations that accepted this message (entry not expired). */
  accepted: Set<string>;
  /** Destinations with an intent but no acceptance: a live or unsettled attempt. */
  intents: Map<string, { state: IntentState; settlesAt: Date }>;
}

/** Everything the ledger knows about one message, in one round trip. */
export async function ledgerView(db: Kysely<Database>, fingerprint: string, now: Date): Promise<LedgerView> {
  const at = now.toISOString();
  const rows = await db
    .selectFrom("delivery_ledger")
    .select(["destination", sql<string>`'accepted'`.as("state"), "expires_at as settles_at"])
    .where("fingerprint", "=", fingerprint)
    .where("expires_at", ">", at)
    .unionAll(
      db
        .selectFrom("delivery_intents")
        .select(["destination", "state", "settles_at"])
        .where("fingerprint", "=", fingerprint)
        .where("expires_at", ">", at),
    )
    .execute();
  const accepted = new Set(rows.filter((row) => row.state === "accepted").map((row) => row.destination));
  const intents = new Map<string, { state: IntentState; settlesAt: Date }>();
  for (const row of rows) {
    if (row.state === "accepted" || accepted.has(row.destination)) continue;
    intents.set(row.destination, { state: row.state === "maybe-delivered" ? "maybe-delivered" : "sending", settlesAt: new Date(row.settles_at) });
  }
  return { accepted, intents };
}

export interface DeliveryClaim {
  fingerprint: string;
  destination: string;
  /** Unique per attempt: settling checks it, so a late attempt cannot settle its successor's intent. */
  attemptId: string;
  now: Date;
  /** When the attempt is over for certain (its deadline plus a margin). */
  settlesAt: Date;
  ttlDays: number;
}

/**
 * Claims the right to send this message to this destination: true if no intent existed or the
 * existing one had settled (then it is taken over), false while another attempt's is live.
 */
export async function claimDelivery(db: Kysely<Database>, claim: DeliveryClaim): Promise<boolean> {
  if (!(Number.isFinite(claim.ttlDays) && claim.ttlDays > 0)) {
    throw new Error(`delivery ledger: ttlDays ${claim.ttlDays} is not a positive number of days`);
  }
  const fields = {
    attempt_id: claim.attemptId,
    state: "sending",
    started_at: claim.now.toISOString(),
    settles_at: claim.settlesAt.toISOString(),
    expires_at: new Date(claim.now.getTime() + claim.ttlDays * DAY_MS).toISOString(),
  };
  const row = await db
    .insertInto("delivery_intents")
    .values({ fingerprint: claim.fingerprint, destination: claim.destination, ...fields })
    // the conditional update is the whole lock: the database applies it atomically, and a
    // live intent (settles_at still ahead) makes it a no-op that returns no row
    .onConflict((oc) => oc.columns(["fingerprint", "destination"]).doUpdateSet(fields).where("delivery_intents.settles_at", "<=", claim.now.toISOString()))
    .returning("attempt_id")
    .executeTakeFirst();
  return row !== undefined;
}

export interface DeliverySettlement {
  fingerprint: string;
  destination: string;
  attemptId: string;
  /** "not-sent": the final dot never left, so the destination cannot have it; "maybe-sent": it did, and no 250 came back. */
  outcome: "not-sent" | "maybe-sent";
  now: Date;
}

/** Ends an attempt that got no 250: forgets its intent, or marks it maybe delivered and settled now. */
export async function settleDelivery(db: Kysely<Database>, settlement: DeliverySettlement): Promise<void> {
  const mine = { fingerprint: settlement.fingerprint, destination: settlement.destination, attempt_id: settlement.attemptId };
  if (settlement.outcome === "not-sent") {
    await db.deleteFrom("delivery_intents").where((eb) => eb.and(mine)).execute();
    return;
  }
  await db
    .updateTable("delivery_intents")
    .set({ state: "maybe-delivered", settles_at: settlement.now.toISOString() })
    .where((eb) => eb.and(mine))
    .execute();
}

/**
 * Settles, as maybe delivered and settled at `now`, every live intent whose attempt id belongs
 * to `owner` (see the module's contract: only a process starting under that node id may call
 * this). Returns how many.
 */
export async function settleIntentsOfOwner(db: Kysely<Database>, owner: string, now: Date): Promise<number> {
  const prefix = `${owner}/`;
  const at = now.toISOString();
  const result = await db
    .updateTable("delivery_intents")
    .set({ state: "maybe-delivered", settles_at: at })
    .where("state", "=", "sending")
    .where("settles_at", ">", at)
    // substr, not LIKE: a node id may contain LIKE's wildcards
    .where(sql<string>`substr(attempt_id, 1, ${prefix.length})`, "=", prefix)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** Deletes acceptances and intents expired at `now`; returns how many. */
export async function purgeExpired(db: Kysely<Database>, now: Date): Promise<number> {
  const at = now.toISOString();
  const ledger = await db.deleteFrom("delivery_ledger").where("expires_at", "<=", at).executeTakeFirst();
  const intents = await db.deleteFrom("delivery_intents").where("expires_at", "<=", at).executeTakeFirst();
  return Number(ledger.numDeletedRows) + Number(intents.numDeletedRows);
}

export interface StoreLedgerOptions {
  ttlDays: number;
  now?: () => Date;
  /** This process's node id: the owner its intents carry (settleIntentsOfOwner). */
  owner?: string;
}

/** The ledger as the relay uses it (relay-message.ts `DeliveryLedger`), over one store. */
export function storeDeliveryLedger(db: Kysely<Database>, options: StoreLedgerOptions) {
  const now = options.now ?? (() => new Date());
  const { ttlDays } = options;
  const owned = (attemptId: string) => (options.owner === undefined ? attemptId : `${options.owner}/${attemptId}`);
  return Object.freeze({
    view: function view(fingerprint: string) {
      return ledgerView(db, fingerprint, now());
    },
    claim: function claim(fingerprint: string, destination: string, attemptId: string, settlesAt: Date) {
      return claimDelivery(db, { fingerprint, destination, attemptId: owned(attemptId), now: now(), settlesAt, ttlDays });
    },
    recordAccepted: function record(fingerprint: string, destination: string, upstreamReply: string) {
      return recordAccepted(db, { fingerprint, destination, upstreamReply, now: now(), ttlDays });
    },
    settle: function settle(fingerprint: string, destination: string, attemptId: string, outcome: DeliverySettlement["outcome"]) {
      return settleDelivery(db, { fingerprint, destination, attemptId: owned(attemptId), outcome, now: now() });
    },
  });
}
