/**
 * The queue runner (issue 13): retries queued messages until every chain delivered, one
 * failed for good, or the message grew too old; then removes it, sending the original sender a
 * DSN when no chain ever accepted it.
 *
 * Promises:
 * - one runner at a time per message, across processes and nodes (claims in the repository); a
 *   claim outlives one relay (the relay's deadline plus a margin), so a runner killed mid-way
 *   leaves the message to the next claim after that — or, when the same node starts again, at
 *   once: a starting runner first releases the claims its node's dead process left behind;
 * - no duplicates: retries go through the delivery ledger like every relay, so a chain already
 *   accepted (by this node, another one, or an attempt that crashed after its 250 was recorded)
 *   is not sent again;
 * - failover order is kept: each retry walks each chain from its first member;
 * - backoff doubles from minBackoffMs to maxBackoffMs (Postfix's minimal/maximal_backoff_time);
 * - every loop is bounded: a tick claims at most `batch` messages and runs them concurrently.
 */
import { createHash, randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import type { Logger } from "../analytics/structured-log.ts";
import type { MessageSigner } from "../delivery/message-signer.ts";
import { representativeFailure, type RelayOutcome } from "../delivery/relay-message.ts";
import { claimDueMessages, readQueuedChunks, releaseClaimsOf, removeQueued, replaceWithNotification, rescheduleQueued, type QueuedMessageRow } from "../store/repositories/delivery-queue-repository.ts";
import type { Store } from "../store/store.ts";
import { composeDsn } from "./delivery-status-notification.ts";
import { redactDestinations } from "./dispatch-reply.ts";
import { enhancedCodeOf } from "./smtp-reply.ts";
import type { Dispatcher } from "./dispatcher.ts";
import { bufferBody, prepareCopy } from "./prepare-copy.ts";
import type { QueueTiming } from "./queue-dispatcher.ts";

export interface QueueRunnerOptions {
  store: Store;
  /** In-session relay for the retries (the ledger under it prevents duplicates). */
  relay: Dispatcher;
  sign: MessageSigner | null;
  hostname: string;
  node: string;
  timing: QueueTiming;
  /** The relay's deadline: a claim lasts this plus a margin. */
  relayDeadlineMs: number;
  pollMs: number;
  batch?: number;
  logger: Logger;
  now?: () => Date;
  /** Counts each retry attempt (metrics). */
  onAttempt?: (outcome: RelayOutcome["status"]) => void;
}

export interface QueueRunner {
  /** Runs one pass now (tests, and after an enqueue). */
  tick(): Promise<number>;
  wake(): void;
  stop(): Promise<void>;
}

export const CLAIM_MARGIN_MS = 30_000;
const HEADER_LIMIT = 64 * 1024;

export function backoffMs(attempts: number, timing: QueueTiming): number {
  return Math.min(timing.maxBackoffMs, timing.minBackoffMs * 2 ** Math.max(0, attempts - 1));
}

export function startQueueRunner(options: QueueRunnerOptions): QueueRunner {
  const now = options.now ?? (() => new Date());
  const { store, logger } = options;
  const batch = options.batch ?? 8;
  let running: Promise<number> | null = null;
  let again = false;
  let stopped = false;

  async function originalHeaders(id: string): Promise<string> {
    let head = Buffer.alloc(0);
    for await (const chunk of readQueuedChunks(store.db, id)) {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end >= 0) return head.subarray(0, end).toString("utf8");
      if (head.length >= HEADER_LIMIT) break;
    }
    return head.subarray(0, HEADER_LIMIT).toString("utf8");
  }

  /** The finished message gives way, in one transaction, to the DSN its sender is owed (delivered by the next pass). */
  async function replaceWithDsn(row: QueuedMessageRow, headers: string, status: string, diagnostic: string, expired: boolean): Promise<boolean> {
    const recipients = (JSON.parse(row.recipients) as string[]).map((address) => ({ address, status, diagnostic }));
    const body = composeDsn({ hostname: options.hostname, to: row.dsn_to, arrivalDate: new Date(row.created_at), recipients, originalHeaders: headers, expired });
    const prepared = await prepareCopy(
      {
        chains: [[row.dsn_to]],
        envelopeFrom: "",
        headers: Buffer.alloc(0),
        body: bufferBody(body),
        routingDomain: options.hostname,
        sign: true,
        seal: null,
        identity: { messageId: `dsn:${row.id}`, mailFrom: "", recipients: [row.dsn_to], contentSha256: createHash("sha256").update(row.id).digest("hex") },
      },
      options.sign,
    );
    const parts: Buffer[] = [];
    for await (const chunk of prepared.request.message()) parts.push(chunk as Buffer);
    const at = now();
    const id = randomUUID();
    const replaced = await replaceWithNotification(
      store.db,
      store.dialect,
      { id: row.id, node: options.node },
      {
        id,
        account: row.account_id,
        zone: row.zone,
        createdAt: at,
        nextAttemptAt: at,
        expiresAt: new Date(at.getTime() + options.timing.maxAgeMs),
        envelopeFrom: "",
        // RFC 5321 §4.5.5: a DSN is sent from, and never answered to, the null sender
        dsnTo: "",
        recipients: [row.dsn_to],
        chains: [[row.dsn_to]],
        fingerprint: prepared.request.fingerprint,
        size: prepared.request.size,
        messageId: null,
        subject: "Undelivered Mail Returned to Sender",
        lastReply: null,
        delivered: 0,
      },
      parts,
    );
    if (replaced) logger.log("info", "queue_dsn", { queue_id: row.id, dsn_id: id, status });
    return replaced;
  }

  async function retry(row: QueuedMessageRow): Promise<void> {
    const chains = JSON.parse(row.chains) as string[][];
    const outcome = await options.relay.dispatch({
      chains,
      mailFrom: row.envelope_from,
      fingerprint: row.fingerprint,
      size: row.size,
      message: () => Readable.from(readQueuedChunks(store.db, row.id)),
    });
    options.onAttempt?.(outcome.status);
    const deliveredNow = outcome.chains.filter((chain) => chain.status === "delivered").length;
    const temporary = outcome.chains.filter((chain) => chain.status === "temporary");
    const delivered = row.delivered + deliveredNow;
    const failure = representativeFailure(outcome, temporary.length > 0 ? "temporary" : "permanent");
    const lastReply = failure === null ? null : redactDestinations(failure.reply, chains.flat());
    const at = now();
    const expired = temporary.length > 0 && at.getTime() >= new Date(row.expires_at).getTime();
    if (temporary.length === 0 || expired) {
      // a DSN is owed only when no chain ever accepted it (as in-session: partial → 250)
      const owed = delivered === 0 && row.dsn_to !== "";
      const done = owed
        ? expired
          ? await replaceWithDsn(row, await originalHeaders(row.id), "4.4.7", `delivery temporarily suspended, then given up: ${lastReply ?? "no answer"}`, true)
          : await replaceWithDsn(row, await originalHeaders(row.id), (enhancedCodeOf(failure?.reply ?? "") ?? "5.0.0"), lastReply ?? "refused", false)
        : await removeQueued(store.db, row.id, options.node);
      if (!done) return; // our claim lapsed: another runner has it
      logger.log(expired ? "warn" : "info", expired ? "queue_expired" : "queue_done", { queue_id: row.id, attempts: row.attempts + 1, delivered });
      // the DSN is due now: the next pass delivers it
      if (owed) tick();
      return;
    }
    const next = new Date(at.getTime() + backoffMs(row.attempts + 1, options.timing));
    await rescheduleQueued(store.db, row.id, options.node, { chains: temporary.map((chain) => chain.chain), nextAttemptAt: next, lastReply, deliveredNow });
    logger.log("info", "queue_deferred", { queue_id: row.id, attempts: row.attempts + 1, next: next.toISOString() });
  }

  // Claims under our node id at start belong to an earlier process of this node, now dead: one
  // that was mid-delivery left an intent in the ledger, which holds the retry until it settles,
  // so taking them back early cannot send twice where waiting for the lapse would not.
  const recovered = releaseClaimsOf(store.db, options.node).then(
    (count) => {
      if (count > 0) logger.log("warn", "queue_claims_released", { node: options.node, count });
    },
    (error: unknown) => logger.log("error", "queue_claims_release_failed", { node: options.node, error }),
  );

  async function pass(): Promise<number> {
    await recovered;
    const at = now();
    const rows = await claimDueMessages(store.db, store.dialect, { node: options.node, now: at, claimUntil: new Date(at.getTime() + options.relayDeadlineMs + CLAIM_MARGIN_MS), limit: batch });
    await Promise.all(rows.map((row) => retry(row).catch((error: unknown) => logger.log("error", "queue_retry_failed", { queue_id: row.id, error }))));
    return rows.length;
  }

  function tick(): Promise<number> {
    if (running !== null) {
      again = true;
      return running;
    }
    running = pass()
      .catch((error: unknown) => {
        logger.log("error", "queue_pass_failed", { error });
        return 0;
      })
      .finally(() => {
        running = null;
        if (again && !stopped) {
          again = false;
          void tick();
        }
      });
    return running;
  }

  const timer = setInterval(() => void tick(), options.pollMs);
  timer.unref();
  return {
    tick,
    wake: () => void tick(),
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
