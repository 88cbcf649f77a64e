/**
 * The durable delivery queue's storage (issue 13): queued messages, their exact bytes in
 * chunks, and claims. SQL only.
 *
 * Promises:
 * - `enqueue` returns only once the message row and every chunk are committed and on disk: on
 *   PostgreSQL a commit is durable (synchronous_commit); on SQLite the store runs WAL with
 *   synchronous=NORMAL (a commit survives a process crash, not a power cut), so an enqueue
 *   commits under synchronous=FULL, which syncs the WAL at that commit;
 * - a due message is claimed by one runner at a time, across processes and nodes: on
 *   PostgreSQL `FOR UPDATE SKIP LOCKED` inside the claiming UPDATE, on SQLite the write lock the
 *   claiming transaction takes (BEGIN IMMEDIATE); a claim lapses at `claim_expires_at`, so a
 *   runner killed mid-delivery leaves the message to another one, or to itself restarted
 *   (`releaseClaimsOf`) without waiting for the lapse;
 * - updates after an attempt apply only while the claim is still the caller's;
 * - bodies are read back one chunk per query, never as one value.
 */
import { sql, type Kysely, type Selectable } from "kysely";
import type { Database, QueuedMessageTable } from "../schema.ts";
import type { StoreDialect } from "../store.ts";

export type QueuedMessageRow = Selectable<QueuedMessageTable>;

export const QUEUE_CHUNK_BYTES = 256 * 1024;

export interface NewQueuedMessage {
  id: string;
  account: string;
  zone: string | null;
  createdAt: Date;
  nextAttemptAt: Date;
  expiresAt: Date;
  envelopeFrom: string;
  dsnTo: string;
  recipients: readonly string[];
  chains: readonly (readonly string[])[];
  fingerprint: string;
  size: number;
  messageId: string | null;
  subject: string | null;
  lastReply: string | null;
  /** Chains already delivered before the message was queued. */
  delivered: number;
}

// SQLite: commits that must reach the disk, counted so one finishing does not drop another's FULL
const durableWriters = new WeakMap<object, number>();

async function durably<T>(db: Kysely<Database>, dialect: StoreDialect, work: () => Promise<T>): Promise<T> {
  if (dialect !== "sqlite") return work();
  const count = durableWriters.get(db) ?? 0;
  durableWriters.set(db, count + 1);
  if (count === 0) await sql`PRAGMA synchronous = FULL`.execute(db);
  try {
    return await work();
  } finally {
    const left = (durableWriters.get(db) ?? 1) - 1;
    durableWriters.set(db, left);
    if (left === 0) await sql`PRAGMA synchronous = NORMAL`.execute(db);
  }
}

/**
 * Stores the message and its bytes (read from `chunks`, in order) in one durable transaction.
 * The bytes stream in: at most one chunk of them is in memory at a time (the source is a spool
 * on local disk, so the transaction is held only for as long as that file takes to read).
 */
export async function enqueueMessage(db: Kysely<Database>, dialect: StoreDialect, message: NewQueuedMessage, chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<void> {
  await durably(db, dialect, () => db.transaction().execute((trx) => insertQueued(trx, message, chunks)));
}

/**
 * Replaces a finished message (still claimed by `node`) with the DSN its sender is owed, in one
 * durable transaction: a crash between dropping the one and storing the other can lose neither
 * the DSN nor — since the DSN is then delivered like any queued message — send it twice.
 * False when the claim had already passed to another runner (nothing changes).
 */
export async function replaceWithNotification(db: Kysely<Database>, dialect: StoreDialect, finished: { id: string; node: string }, notification: NewQueuedMessage, chunks: Iterable<Buffer>): Promise<boolean> {
  return durably(db, dialect, () =>
    db.transaction().execute(async (trx) => {
      const removed = await trx.deleteFrom("queued_messages").where("id", "=", finished.id).where("claimed_by", "=", finished.node).executeTakeFirst();
      if (removed.numDeletedRows !== 1n) return false;
      await trx.deleteFrom("queued_message_chunks").where("message_id", "=", finished.id).execute();
      await insertQueued(trx, notification, chunks);
      return true;
    }),
  );
}

async function insertQueued(trx: Kysely<Database>, message: NewQueuedMessage, chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<void> {
  await trx
    .insertInto("queued_messages")
    .values({
      id: message.id,
      account_id: message.account,
      zone: message.zone,
      created_at: message.createdAt.toISOString(),
      next_attempt_at: message.nextAttemptAt.toISOString(),
      expires_at: message.expiresAt.toISOString(),
      envelope_from: message.envelopeFrom,
      dsn_to: message.dsnTo,
      recipients: JSON.stringify(message.recipients),
      chains: JSON.stringify(message.chains),
      fingerprint: message.fingerprint,
      size: message.size,
      message_id: message.messageId,
      subject: message.subject,
      last_reply: message.lastReply,
      delivered: message.delivered,
    })
    .execute();
  let seq = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async (data: Buffer) => {
    await trx.insertInto("queued_message_chunks").values({ message_id: message.id, seq: seq++, data }).execute();
  };
  for await (const chunk of chunks) {
    pending.push(chunk);
    pendingBytes += chunk.length;
    while (pendingBytes >= QUEUE_CHUNK_BYTES) {
      const joined = Buffer.concat(pending);
      await flush(joined.subarray(0, QUEUE_CHUNK_BYTES));
      pending = [joined.subarray(QUEUE_CHUNK_BYTES)];
      pendingBytes = pending[0]!.length;
    }
  }
  if (pendingBytes > 0) await flush(Buffer.concat(pending));
}

/** Claims up to `limit` due, unclaimed (or lapsed) messages for `node` until `claimUntil`. */
export async function claimDueMessages(db: Kysely<Database>, dialect: StoreDialect, claim: { node: string; now: Date; claimUntil: Date; limit: number }): Promise<QueuedMessageRow[]> {
  const now = claim.now.toISOString();
  return db.transaction().execute(async (trx) => {
    let due = trx
      .selectFrom("queued_messages")
      .select("id")
      .where("next_attempt_at", "<=", now)
      .where((eb) => eb.or([eb("claim_expires_at", "is", null), eb("claim_expires_at", "<", now)]))
      .orderBy("next_attempt_at")
      .limit(claim.limit);
    // another node's runner skips what this one is claiming instead of waiting for it
    if (dialect === "postgres") due = due.forUpdate().skipLocked();
    const ids = (await due.execute()).map((row) => row.id);
    if (ids.length === 0) return [];
    return trx
      .updateTable("queued_messages")
      .set({ claimed_by: claim.node, claim_expires_at: claim.claimUntil.toISOString() })
      .where("id", "in", ids)
      .returningAll()
      .execute();
  });
}

/** The message's bytes, one chunk per query. */
export async function* readQueuedChunks(db: Kysely<Database>, id: string): AsyncGenerator<Buffer> {
  for (let seq = 0; ; seq++) {
    const row = await db.selectFrom("queued_message_chunks").select("data").where("message_id", "=", id).where("seq", "=", seq).executeTakeFirst();
    if (row === undefined) return;
    yield Buffer.from(row.data.buffer, row.data.byteOffset, row.data.byteLength);
  }
}

/**
 * Releases every claim held under `node`, returning how many. For a runner starting up: a node
 * id names one running process, so claims under it were left by an earlier process of that node
 * that died (SIGKILL, power cut) and would otherwise wait out their lapse (relay timeout + 30 s).
 */
export async function releaseClaimsOf(db: Kysely<Database>, node: string): Promise<number> {
  const result = await db.updateTable("queued_messages").set({ claimed_by: null, claim_expires_at: null }).where("claimed_by", "=", node).executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** After an attempt: what is left, when to try again; only while the claim is still `node`'s. */
export async function rescheduleQueued(db: Kysely<Database>, id: string, node: string, update: { chains: readonly (readonly string[])[]; nextAttemptAt: Date; lastReply: string | null; deliveredNow: number }): Promise<boolean> {
  const result = await db
    .updateTable("queued_messages")
    .set((eb) => ({
      chains: JSON.stringify(update.chains),
      next_attempt_at: update.nextAttemptAt.toISOString(),
      last_reply: update.lastReply,
      attempts: eb("attempts", "+", 1),
      delivered: eb("delivered", "+", update.deliveredNow),
      claimed_by: null,
      claim_expires_at: null,
    }))
    .where("id", "=", id)
    .where("claimed_by", "=", node)
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/** Removes a message and its bytes (delivered, given up, or deleted by the operator). */
export async function removeQueued(db: Kysely<Database>, id: string, node?: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    let q = trx.deleteFrom("queued_messages").where("id", "=", id);
    if (node !== undefined) q = q.where("claimed_by", "=", node);
    const result = await q.executeTakeFirst();
    if (result.numDeletedRows !== 1n) return false;
    await trx.deleteFrom("queued_message_chunks").where("message_id", "=", id).execute();
    return true;
  });
}

/** The operator's delete: the entry and its bytes, in the caller's transaction. */
export async function deleteQueued(db: Kysely<Database>, id: string, account: string): Promise<boolean> {
  const result = await db.deleteFrom("queued_messages").where("id", "=", id).where("account_id", "=", account).executeTakeFirst();
  if (result.numDeletedRows !== 1n) return false;
  await db.deleteFrom("queued_message_chunks").where("message_id", "=", id).execute();
  return true;
}

export function listQueued(db: Kysely<Database>, query: { account: string | null; limit: number }): Promise<QueuedMessageRow[]> {
  let q = db.selectFrom("queued_messages").selectAll().orderBy("created_at").orderBy("id").limit(query.limit);
  if (query.account !== null) q = q.where("account_id", "=", query.account);
  return q.execute();
}

export async function getQueued(db: Kysely<Database>, id: string, account: string | null): Promise<QueuedMessageRow | null> {
  let q = db.selectFrom("queued_messages").selectAll().where("id", "=", id);
  if (account !== null) q = q.where("account_id", "=", account);
  return (await q.executeTakeFirst()) ?? null;
}

/** Makes a message due now (the operator's "retry"); false when it is not there. */
export async function retryQueuedNow(db: Kysely<Database>, id: string, account: string | null, now: Date): Promise<boolean> {
  let q = db.updateTable("queued_messages").set({ next_attempt_at: now.toISOString() }).where("id", "=", id);
  if (account !== null) q = q.where("account_id", "=", account);
  return (await q.executeTakeFirst()).numUpdatedRows === 1n;
}

export async function queueStats(db: Kysely<Database>): Promise<{ depth: number; oldest: string | null }> {
  const row = await db
    .selectFrom("queued_messages")
    .select((eb) => [eb.fn.countAll<string | number>().as("depth"), eb.fn.min("created_at").as("oldest")])
    .executeTakeFirstOrThrow();
  return { depth: Number(row.depth), oldest: (row.oldest as string | null) ?? null };
}
