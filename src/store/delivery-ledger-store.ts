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
import { prepareQuery, preparedFor, type PreparedQuery } from "./prepared-query.ts";
import type { Database } from "./schema.ts";
import type { StoreWriter } from "./sqlite-writer.ts";

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
  await recordAcceptedWith(kyselyRunner(db), statementsFor(db), entry);
}

async function recordAcceptedWith(run: Runner, statements: LedgerStatements, entry: AcceptedDelivery): Promise<void> {
  if (!(Number.isFinite(entry.ttlDays) && entry.ttlDays > 0)) {
    throw new Error(`delivery ledger: ttlDays ${entry.ttlDays} is not a positive number of days`);
  }
  const acceptedAt = entry.now.toISOString();
  const expiresAt = new Date(entry.now.getTime() + entry.ttlDays * DAY_MS).toISOString();
  await run(statements.accept, [entry.fingerprint, entry.destination, acceptedAt, expiresAt, entry.upstreamReply]);
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
  return ledgerViewWith(kyselyRunner(db), statementsFor(db), fingerprint, now);
}

async function ledgerViewWith(run: Runner, statements: LedgerStatements, fingerprint: string, now: Date): Promise<LedgerView> {
  const rows = (await run(statements.view, [fingerprint, now.toISOString()])) as { destination: string; state: string; settles_at: string }[];
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
  return claimDeliveryWith(kyselyRunner(db), statementsFor(db), claim);
}

async function claimDeliveryWith(run: Runner, statements: LedgerStatements, claim: DeliveryClaim): Promise<boolean> {
  if (!(Number.isFinite(claim.ttlDays) && claim.ttlDays > 0)) {
    throw new Error(`delivery ledger: ttlDays ${claim.ttlDays} is not a positive number of days`);
  }
  const expiresAt = new Date(claim.now.getTime() + claim.ttlDays * DAY_MS).toISOString();
  const rows = await run(statements.claim, [claim.fingerprint, claim.destination, claim.attemptId, claim.now.toISOString(), claim.settlesAt.toISOString(), expiresAt]);
  return rows.length > 0;
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
  await settleDeliveryWith(kyselyRunner(db), statementsFor(db), settlement);
}

async function settleDeliveryWith(run: Runner, statements: LedgerStatements, settlement: DeliverySettlement): Promise<void> {
  const mine = [settlement.fingerprint, settlement.destination, settlement.attemptId] as const;
  if (settlement.outcome === "not-sent") await run(statements.forget, mine);
  else await run(statements.maybeDelivered, [settlement.now.toISOString(), ...mine]);
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
  /** SQLite: run the ledger's statements through the store writer (a thread, or grouped on this one) instead of Kysely. */
  writer?: StoreWriter | null;
}

/** The ledger as the relay uses it (relay-message.ts `DeliveryLedger`), over one store. */
export function storeDeliveryLedger(db: Kysely<Database>, options: StoreLedgerOptions) {
  const now = options.now ?? (() => new Date());
  const { ttlDays } = options;
  const run = options.writer ? writerRunner(options.writer) : kyselyRunner(db);
  const statements = statementsFor(db);
  const owned = (attemptId: string) => (options.owner === undefined ? attemptId : `${options.owner}/${attemptId}`);
  return Object.freeze({
    view: function view(fingerprint: string) {
      return ledgerViewWith(run, statements, fingerprint, now());
    },
    claim: function claim(fingerprint: string, destination: string, attemptId: string, settlesAt: Date) {
      return claimDeliveryWith(run, statements, { fingerprint, destination, attemptId: owned(attemptId), now: now(), settlesAt, ttlDays });
    },
    recordAccepted: function record(fingerprint: string, destination: string, upstreamReply: string) {
      return recordAcceptedWith(run, statements, { fingerprint, destination, upstreamReply, now: now(), ttlDays });
    },
    settle: function settle(fingerprint: string, destination: string, attemptId: string, outcome: DeliverySettlement["outcome"]) {
      return settleDeliveryWith(run, statements, { fingerprint, destination, attemptId: owned(attemptId), outcome, now: now() });
    },
  });
}

/** Runs one prepared statement and gives its rows: on the Kysely connection, or on the writer thread. */
type Runner = (query: PreparedQuery<readonly unknown[]>, args: readonly unknown[]) => Promise<Record<string, unknown>[]>;

function kyselyRunner(db: Kysely<Database>): Runner {
  return async (query, args) => (await db.executeQuery<Record<string, unknown>>(query.compiled(args))).rows;
}

function writerRunner(writer: StoreWriter): Runner {
  return async (query, args) => (await writer.run([{ sql: query.sql, parameters: query.parameters(args) }], { transaction: false }))[0]!;
}

type LedgerStatements = ReturnType<typeof statementsFor>;

/**
 * The statements every relayed message makes, built and compiled once per store (prepared-query.ts):
 * - view: (fingerprint, now) → acceptances and intents not expired at `now`;
 * - accept: (fingerprint, destination, accepted_at, expires_at, upstream reply) — an update
 *   rather than an ignore on conflict: an expired-but-unpurged entry must come back to life when
 *   the destination accepts again, or the next retry would deliver a duplicate;
 * - claim: (fingerprint, destination, attempt id, now, settles_at, expires_at) → a row when won:
 *   the conditional update is the whole lock, applied atomically by the database, and a live
 *   intent (settles_at still ahead) makes it a no-op that returns no row;
 * - forget / maybeDelivered: an attempt's own intent, deleted or marked (the latter with `now` first).
 */
const statementsFor = preparedFor((db: Kysely<Database>) => ({
  view: prepareQuery<readonly unknown[]>(2, (fingerprint, at) =>
    db
      .selectFrom("delivery_ledger")
      .select(["destination", sql<string>`'accepted'`.as("state"), "expires_at as settles_at"])
      .where("fingerprint", "=", fingerprint!)
      .where("expires_at", ">", at!)
      .unionAll(db.selectFrom("delivery_intents").select(["destination", "state", "settles_at"]).where("fingerprint", "=", fingerprint!).where("expires_at", ">", at!)),
  ),
  accept: prepareQuery<readonly unknown[]>(5, (fingerprint, destination, acceptedAt, expiresAt, reply) =>
    db
      .insertInto("delivery_ledger")
      .values({ fingerprint: fingerprint!, destination: destination!, accepted_at: acceptedAt!, expires_at: expiresAt!, upstream_reply: reply! })
      .onConflict((oc) => oc.columns(["fingerprint", "destination"]).doUpdateSet({ accepted_at: acceptedAt!, expires_at: expiresAt!, upstream_reply: reply! })),
  ),
  claim: prepareQuery<readonly unknown[]>(6, (fingerprint, destination, attemptId, now, settlesAt, expiresAt) => {
    const fields = { attempt_id: attemptId!, state: "sending", started_at: now!, settles_at: settlesAt!, expires_at: expiresAt! };
    return db
      .insertInto("delivery_intents")
      .values({ fingerprint: fingerprint!, destination: destination!, ...fields })
      .onConflict((oc) => oc.columns(["fingerprint", "destination"]).doUpdateSet(fields).where("delivery_intents.settles_at", "<=", now!))
      .returning("attempt_id");
  }),
  forget: prepareQuery<readonly unknown[]>(3, (fingerprint, destination, attemptId) =>
    db.deleteFrom("delivery_intents").where((eb) => eb.and({ fingerprint: fingerprint!, destination: destination!, attempt_id: attemptId! })),
  ),
  maybeDelivered: prepareQuery<readonly unknown[]>(4, (at, fingerprint, destination, attemptId) =>
    db
      .updateTable("delivery_intents")
      .set({ state: "maybe-delivered", settles_at: at! })
      .where((eb) => eb.and({ fingerprint: fingerprint!, destination: destination!, attempt_id: attemptId! })),
  ),
}));
