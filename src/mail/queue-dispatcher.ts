/**
 * The queue Dispatcher (issue 13, a zone's `queue` delivery mode): tries the copy in-session
 * first, exactly as the relay would; when every chain delivered (or failed for good) nothing is
 * stored and the outcome is the relay's. When a chain deferred, the copy and its deferred
 * chains are stored durably and only then is the outcome reported as queued — so the sender
 * hears 250 only for a message that exists on disk (or in PostgreSQL) and will be retried.
 *
 * Promises: a copy that cannot be stored is reported as the relay's temporary outcome (the
 * sender keeps the message and retries); the failover order of every chain is kept.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "../analytics/structured-log.ts";
import { enqueueMessage } from "../store/repositories/delivery-queue-repository.ts";
import type { Store } from "../store/store.ts";
import type { Dispatcher } from "./dispatcher.ts";

export interface QueueTiming {
  /** First retry after this long, doubling up to maxBackoffMs (Postfix: 300 s … 4000 s). */
  minBackoffMs: number;
  maxBackoffMs: number;
  /** Give up (and send a DSN) once a message is this old (Postfix: 5 days). */
  maxAgeMs: number;
}

export const DEFAULT_ACCOUNT_FOR_QUEUE = "default";

export function createQueueDispatcher(options: { inSession: Dispatcher; store: Store; timing: QueueTiming; logger: Logger; now?: () => Date; onQueued?: () => void }): Dispatcher {
  const now = options.now ?? (() => new Date());
  return {
    mode: "queue",
    async dispatch(request) {
      const outcome = await options.inSession.dispatch(request);
      const deferred = outcome.chains.filter((chain) => chain.status === "temporary");
      if (deferred.length === 0) return outcome;
      const id = randomUUID();
      const at = now();
      const origin = request.origin;
      try {
        await enqueueMessage(
          options.store.db,
          options.store.dialect,
          {
            id,
            account: origin?.account ?? DEFAULT_ACCOUNT_FOR_QUEUE,
            zone: origin?.zone ?? null,
            createdAt: at,
            nextAttemptAt: new Date(at.getTime() + options.timing.minBackoffMs),
            expiresAt: new Date(at.getTime() + options.timing.maxAgeMs),
            envelopeFrom: request.mailFrom,
            dsnTo: origin?.notify ?? "",
            recipients: origin?.recipients ?? [],
            chains: deferred.map((chain) => chain.chain),
            fingerprint: request.fingerprint,
            size: request.size,
            messageId: origin?.messageId ?? null,
            subject: origin?.subject ?? null,
            lastReply: deferred[0]?.attempts.at(-1)?.reply ?? null,
            delivered: outcome.chains.filter((chain) => chain.status === "delivered").length,
          },
          request.message(),
        );
      } catch (error) {
        options.logger.log("error", "queue_enqueue_failed", { fingerprint: request.fingerprint, error });
        return outcome;
      }
      options.logger.log("info", "message_queued", { queue_id: id, fingerprint: request.fingerprint, chains: deferred.length });
      options.onQueued?.();
      return { ...outcome, queued: { id, chains: deferred.length } };
    },
  };
}
