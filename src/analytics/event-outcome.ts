/**
 * The activity log's outcome vocabulary: what became of one message for one recipient.
 *
 *   forwarded        every (or at least one, "partial" in detail) destination chain accepted it
 *   dropped          accepted and discarded on purpose (a drop rule)
 *   rejected         refused with a 5xx (at RCPT TO, by policy, by a reject rule or a worker)
 *   delivery_failed  accepted for relay in-session, but every destination refused it for good (5xx)
 *   deferred         answered with a 4xx: the sender will retry (a 451 is never "rejected")
 *   queued           accepted (250) in queue delivery mode with some destination deferred: the
 *                    message is stored and mailroute retries it
 *   worker           handled by an Email Worker; its own outcome (forwarded, replied,
 *                    dropped) is in detail.worker.outcome
 *
 * Why: the old values mixed the relay's words (delivered, partial, failed) with the SMTP
 * verdict, so worker-forwarded mail read "dropped" and a 451 read "rejected". Rows written
 * before migration 0008 are rewritten by it; `normalizeOutcome` maps any old value on read.
 */

export const OUTCOMES = ["forwarded", "dropped", "rejected", "delivery_failed", "deferred", "worker", "queued"] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface OutcomeFacts {
  replyCode: number;
  /** The in-session relay's verdict, null when nothing was relayed. */
  relayStatus: "delivered" | "partial" | "temporary" | "permanent" | null;
  /** The worker's own outcome when a worker ran. */
  workerOutcome: string | null;
  /** Some destination was stored for retry (queue delivery mode). */
  queued?: boolean;
}

export function eventOutcome(facts: OutcomeFacts): Outcome {
  if (facts.replyCode >= 500) return facts.relayStatus === "permanent" ? "delivery_failed" : "rejected";
  if (facts.replyCode >= 400) return "deferred";
  if (facts.queued === true) return "queued";
  if (facts.workerOutcome !== null) return "worker";
  if (facts.relayStatus === "delivered" || facts.relayStatus === "partial") return "forwarded";
  return "dropped";
}

/** Any stored value (old or new) in today's vocabulary; `replyCode` and `action` settle old ambiguities. */
export function normalizeOutcome(outcome: string, replyCode: number | null, action: string): Outcome {
  if ((OUTCOMES as readonly string[]).includes(outcome)) {
    if (outcome === "rejected" && replyCode !== null && replyCode >= 400 && replyCode < 500) return "deferred";
    if (outcome === "dropped" && action === "worker") return "worker";
    return outcome as Outcome;
  }
  switch (outcome) {
    case "delivered":
    case "partial":
      return "forwarded";
    case "failed":
      return "delivery_failed";
    case "refused":
      return replyCode !== null && replyCode >= 400 && replyCode < 500 ? "deferred" : "rejected";
    default:
      return replyCode !== null && replyCode >= 500 ? "rejected" : replyCode !== null && replyCode >= 400 ? "deferred" : "dropped";
  }
}
