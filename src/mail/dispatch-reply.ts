/**
 * The sender's answer for what the dispatcher reported (DESIGN §4), from the reply catalogue:
 * every primary delivered → 250; some delivered and the rest refused permanently → 250 with the
 * count; any primary failed temporarily → 451; every primary refused → 550.
 *
 * Promises:
 * - an upstream's own answer is passed on with its enhanced code and the host that gave it, the
 *   private destination address redacted;
 * - a failure of ours (DNS, no connection, our deadline, an unmet MTA-STS policy, a held
 *   intent) is said in our words (FORWARDING_*), never as "the destination server said".
 */
import type { LocalFailureKind } from "../delivery/local-attempt.ts";
import { heldChain, representativeFailure } from "../delivery/relay-message.ts";
import type { DispatchOutcome } from "./dispatcher.ts";
import { replies, type ReplyTemplate } from "./reply-catalogue.ts";
import { enhancedCodeOf, SmtpReply } from "./smtp-reply.ts";

const OUR_FAILURES: Readonly<Record<LocalFailureKind, ReplyTemplate>> = Object.freeze({
  "dns-failed": replies.FORWARDING_DNS_FAILED,
  "no-such-domain": replies.FORWARDING_NO_SUCH_DOMAIN,
  "null-mx": replies.FORWARDING_NULL_MX,
  "no-target": replies.FORWARDING_UNREACHABLE,
  unreachable: replies.FORWARDING_UNREACHABLE,
  "timed-out": replies.FORWARDING_TIMED_OUT,
  "not-tried": replies.FORWARDING_TIMED_OUT,
  "mta-sts-unknown": replies.FORWARDING_DNS_FAILED,
  "tls-policy": replies.FORWARDING_TLS_UNMET,
  held: replies.FORWARDING_HELD,
  "ledger-unavailable": replies.LOCAL_ERROR,
});

export function replyForRelay(outcome: DispatchOutcome, queueId: string, hostname: string): SmtpReply {
  const delivered = outcome.chains.filter((chain) => chain.status === "delivered").length;
  // stored durably before this answer (queue-dispatcher.ts): ours to deliver now
  if (outcome.queued !== undefined) return new SmtpReply(replies.ACCEPTED_QUEUED, { id: queueId, count: delivered, queued: outcome.queued.chains });
  switch (outcome.status) {
    case "delivered":
      return new SmtpReply(replies.ACCEPTED, { id: queueId, count: delivered });
    case "partial":
      return new SmtpReply(replies.ACCEPTED_PARTIAL, { id: queueId, count: delivered, failed: outcome.chains.length - delivered });
    case "temporary":
    case "permanent": {
      const held = outcome.status === "temporary" ? heldChain(outcome) : null;
      if (held !== null) return new SmtpReply(held.held === "in-flight" ? replies.FORWARDING_HELD : replies.LOCAL_ERROR, { hop: hostname });
      const failure = representativeFailure(outcome, outcome.status);
      if (failure === null) return new SmtpReply(outcome.status === "temporary" ? replies.FORWARDING_UNREACHABLE : replies.UPSTREAM_PERMANENT, { hop: hostname, upstream: "no answer" });
      if (failure.local !== undefined) {
        const template = OUR_FAILURES[failure.local];
        // the TLS failure's own class (4.7.4 no STARTTLS / MX not listed, 4.7.5 certificate)
        return new SmtpReply(template, { hop: hostname }, failure.local === "tls-policy" ? { enhanced: enhancedCodeOf(failure.reply, 4) ?? template.enhanced } : {});
      }
      const klass = outcome.status === "temporary" ? 4 : 5;
      const template = klass === 4 ? replies.UPSTREAM_TEMPORARY : replies.UPSTREAM_PERMANENT;
      const upstream = redactDestinations(failure.upstream === null ? failure.reply : `${failure.upstream} said: ${failure.reply}`, [failure.destination]);
      return new SmtpReply(template, { hop: hostname, upstream }, { enhanced: enhancedCodeOf(failure.reply, klass) ?? template.enhanced });
    }
  }
}

/** Upstreams often quote the recipient ("<bob@gmail.com>: user unknown"); those are private addresses. */
export function redactDestinations(text: string, addresses: readonly string[]): string {
  let result = text;
  for (const address of addresses) {
    if (address !== "") result = result.replace(new RegExp(address.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gi"), "(destination)");
  }
  return result;
}
