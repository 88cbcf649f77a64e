/**
 * How a routing refusal is answered at RCPT TO: one mapping from RefusalReason to the reply
 * catalogue, shared by the server and by `mailroute route` so the explanation an operator
 * reads is exactly what a sender would get.
 */
import type { RoutingDecision, RefusalReason } from "../routing/resolve-recipient.ts";
import { replies, type ReplyTemplate } from "./reply-catalogue.ts";
import { SmtpReply } from "./smtp-reply.ts";

const REFUSALS: Readonly<Record<RefusalReason, ReplyTemplate>> = Object.freeze({
  syntax: replies.RCPT_SYNTAX,
  "routing-trick": replies.ROUTING_TRICK,
  "relay-denied": replies.RELAY_DENIED,
  "zone-disabled": replies.ZONE_DISABLED,
  "unknown-recipient": replies.RCPT_UNKNOWN,
  "rule-inactive": replies.RULE_INACTIVE,
});

/** The RCPT TO reply for a decision, or null when the recipient is accepted. */
export function rcptReplyFor(address: string, decision: RoutingDecision, options: { workers?: boolean } = {}): SmtpReply | null {
  if (decision.kind === "refuse") {
    return new SmtpReply(REFUSALS[decision.reason], { address, detail: decision.detail, domain: decision.domain ?? "" });
  }
  switch (decision.action.type) {
    case "reject":
      return new SmtpReply(replies.RULE_REJECT, { address, reason: decision.action.reason });
    case "worker":
      return options.workers === true ? null : new SmtpReply(replies.WORKER_UNAVAILABLE, { address, script: decision.action.script });
    default:
      return null;
  }
}
