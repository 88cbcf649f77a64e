/**
 * The durable queue of one account (issue 13, queue delivery mode): what is waiting, why, and
 * the operator's two actions — retry now, delete. Reads show the addresses the sender used and
 * the chains still to deliver (the account's own destinations); deletes and retries are
 * audited. Neither changes routing, so neither bumps the configuration version.
 */
import { deleteQueued, getQueued, listQueued, retryQueuedNow, type QueuedMessageRow } from "../../store/repositories/delivery-queue-repository.ts";
import type { ServiceContext } from "../service-context.ts";
import { ValidationError } from "../validation-error.ts";

export interface QueuedMessage {
  id: string;
  zone: string | null;
  created: string;
  nextAttempt: string;
  expires: string;
  attempts: number;
  /** The addresses the sender used. */
  recipients: string[];
  /** The chains still to deliver, each in failover order. */
  pending: string[][];
  sender: string;
  messageId: string | null;
  subject: string | null;
  size: number;
  lastReply: string | null;
  /** The node holding it right now, or null. */
  claimedBy: string | null;
}

function notFound(id: string): ValidationError {
  return new ValidationError("id", `no queued message "${id}"`, "not_found");
}

function present(row: QueuedMessageRow): QueuedMessage {
  return {
    id: row.id,
    zone: row.zone,
    created: row.created_at,
    nextAttempt: row.next_attempt_at,
    expires: row.expires_at,
    attempts: row.attempts,
    recipients: JSON.parse(row.recipients) as string[],
    pending: JSON.parse(row.chains) as string[][],
    sender: row.dsn_to,
    messageId: row.message_id,
    subject: row.subject,
    size: row.size,
    lastReply: row.last_reply,
    claimedBy: row.claim_expires_at !== null && row.claim_expires_at > new Date().toISOString() ? row.claimed_by : null,
  };
}

export class QueueService {
  readonly #ctx: ServiceContext;

  constructor(ctx: ServiceContext) {
    this.#ctx = ctx;
  }

  async list(limit = 100): Promise<QueuedMessage[]> {
    if (!(Number.isInteger(limit) && limit >= 1 && limit <= 1000)) throw new ValidationError("limit", "must be a whole number from 1 to 1000");
    return (await listQueued(this.#ctx.db, { account: this.#ctx.scope.account, limit })).map(present);
  }

  async get(id: string): Promise<QueuedMessage> {
    const row = await getQueued(this.#ctx.db, id, this.#ctx.scope.account);
    if (row === null) throw notFound(id);
    return present(row);
  }

  async retry(id: string): Promise<QueuedMessage> {
    return this.#ctx.change({ action: "queue.retry", resourceType: "queued_message", resourceId: id, routing: false }, async (trx) => {
      if (!(await retryQueuedNow(trx, id, this.#ctx.scope.account, this.#ctx.now()))) throw notFound(id);
      const row = (await getQueued(trx, id, this.#ctx.scope.account))!;
      return { value: present(row) };
    });
  }

  async delete(id: string): Promise<void> {
    await this.#ctx.change({ action: "queue.delete", resourceType: "queued_message", resourceId: id, routing: false }, async (trx) => {
      const row = await getQueued(trx, id, this.#ctx.scope.account);
      if (row === null || !(await deleteQueued(trx, id, this.#ctx.scope.account))) throw notFound(id);
      return { value: undefined, before: present(row) };
    });
  }
}
