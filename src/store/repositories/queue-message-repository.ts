/**
 * Queue messages (`worker_queue_messages`): what a worker's producer binding sends waits here
 * until the queue's consumer worker acknowledges it, so a restart loses nothing and several
 * nodes (PostgreSQL) share one queue. SQL only; the dispatcher (workers/queue-dispatcher.ts)
 * decides retries and dead-lettering.
 *
 * Promises: a message is handed to one batch at a time: claiming is a conditional update per
 * message (free, or its claim expired), so two nodes never run the same message at once; a node
 * that dies mid-batch loses its claim after the lease, and the messages run again (at least
 * once, as on Cloudflare); a message is not visible before its delay.
 */
import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import type { Database } from "../schema.ts";

export interface QueuedMessage {
  id: string;
  queue: string;
  contentType: string;
  body: string;
  attempts: number;
  createdAt: string;
}

export async function enqueueMessages(db: Kysely<Database>, account: string, queue: string, messages: readonly { body: string; contentType: string; delaySeconds: number }[], now = new Date()): Promise<void> {
  if (messages.length === 0) return;
  await db
    .insertInto("worker_queue_messages")
    .values(
      messages.map((message) => ({
        id: randomUUID(),
        account_id: account,
        queue,
        content_type: message.contentType,
        body: message.body,
        attempts: 0,
        visible_at: new Date(now.getTime() + message.delaySeconds * 1000).toISOString(),
        claimed_until: null,
        created_at: now.toISOString(),
      })),
    )
    .execute();
}

/** (account, queue) pairs with messages ready now. */
export async function readyQueues(db: Kysely<Database>, now = new Date()): Promise<{ account: string; queue: string }[]> {
  const at = now.toISOString();
  const rows = await db
    .selectFrom("worker_queue_messages")
    .select(["account_id", "queue"])
    .distinct()
    .where("visible_at", "<=", at)
    .where((eb) => eb.or([eb("claimed_until", "is", null), eb("claimed_until", "<", at)]))
    .execute();
  return rows.map((row) => ({ account: row.account_id, queue: row.queue }));
}

export async function claimMessages(db: Kysely<Database>, account: string, queue: string, limit: number, leaseMs: number, now = new Date()): Promise<QueuedMessage[]> {
  const at = now.toISOString();
  const until = new Date(now.getTime() + leaseMs).toISOString();
  const candidates = await db
    .selectFrom("worker_queue_messages")
    .selectAll()
    .where("account_id", "=", account)
    .where("queue", "=", queue)
    .where("visible_at", "<=", at)
    .where((eb) => eb.or([eb("claimed_until", "is", null), eb("claimed_until", "<", at)]))
    .orderBy("visible_at")
    .orderBy("created_at")
    .limit(limit)
    .execute();
  const claimed: QueuedMessage[] = [];
  for (const row of candidates) {
    // conditional on the claim we saw: another node's claim in between wins, and we skip the row
    const result = await db
      .updateTable("worker_queue_messages")
      .set({ claimed_until: until })
      .where("id", "=", row.id)
      .where((eb) => (row.claimed_until === null ? eb("claimed_until", "is", null) : eb("claimed_until", "=", row.claimed_until)))
      .executeTakeFirst();
    if (result.numUpdatedRows === 1n) claimed.push({ id: row.id, queue: row.queue, contentType: row.content_type, body: row.body, attempts: row.attempts, createdAt: row.created_at });
  }
  return claimed;
}

export async function acknowledgeMessages(db: Kysely<Database>, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.deleteFrom("worker_queue_messages").where("id", "in", [...ids]).execute();
}

/** Back to `queue` (the same one after a retry delay, or a dead-letter queue), unclaimed, visible at `visibleAt`. */
export async function requeueMessage(db: Kysely<Database>, id: string, change: { queue?: string; attempts: number; visibleAt: Date }): Promise<void> {
  await db
    .updateTable("worker_queue_messages")
    .set({ ...(change.queue === undefined ? {} : { queue: change.queue }), attempts: change.attempts, claimed_until: null, visible_at: change.visibleAt.toISOString() })
    .where("id", "=", id)
    .execute();
}
