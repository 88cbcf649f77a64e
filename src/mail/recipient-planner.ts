/**
 * The recipient planner: RCPT TO address (and the transaction's sender) → a RoutingPlan, or the
 * catalogue reply refusing it. Pure: the routing table, the SRS verifier and the options are
 * passed in, nothing is read from a socket, a clock or a database here, so the SMTP front end,
 * the HTTP email handler and `mailroute route` get the same answer for the same inputs.
 *
 * Promises:
 * - never an open relay: a plan exists only for an address one of our zones routes, or for a
 *   valid SRS return address of ours (DESIGN §3, §4);
 * - an SRS return address accepts only the null sender (RFC 5321 §4.5.5) unless
 *   `srsAcceptAnySender` (postsrsd compatibility); the sender is checked before the hash, so a
 *   sender who may not use the address cannot use it to test guesses either;
 * - recipients share a transaction (equal `key`) only when the same action, destinations and
 *   zone policy apply to all of them.
 */
import type { SrsReverseResult } from "../delivery/srs-rewriter.ts";
import { SrsRewriter } from "../delivery/srs-rewriter.ts";
import { isAddressProblem, parseAddress } from "../routing/email-address.ts";
import { planKey, resolveRecipient, type RefusalReason, type RoutingDecision } from "../routing/resolve-recipient.ts";
import { DEFAULT_ROUTING_ACCOUNT, DEFAULT_ZONE_POLICY, type RoutingTable } from "../routing/routing-table.ts";
import { replies, type ReplyTemplate } from "./reply-catalogue.ts";
import type { RoutingPlan } from "./routing-plan.ts";
import { SmtpReply } from "./smtp-reply.ts";

export interface PlannedRecipient {
  address: string;
  zone: string | null;
  /** The plan's kind as the activity log names the action. */
  action: string;
  ruleId: string | null;
}

export type RecipientPlanning =
  | { ok: true; plan: RoutingPlan; recipient: PlannedRecipient }
  /**
   * `reason` is the activity log's and the structured log's word for the refusal; `zone` is our
   * zone the address belongs to (so its owner sees the refusal in its activity log), null when
   * the domain is not routed here.
   */
  | { ok: false; reply: SmtpReply; reason: string; zone: string | null };

export interface PlannerView {
  routing: RoutingTable;
  /** Our SRS domain (normalised hostname). */
  srsDomain: string;
  /** Verifies and reverses one of our SRS addresses. */
  srsReverse: (address: string) => SrsReverseResult;
  srsAcceptAnySender: boolean;
  /** Whether Email Workers can run here (a worker rule is refused 451 without a runtime). */
  workers: boolean;
}

const REFUSALS: Readonly<Record<RefusalReason, ReplyTemplate>> = Object.freeze({
  syntax: replies.RCPT_SYNTAX,
  "routing-trick": replies.ROUTING_TRICK,
  "relay-denied": replies.RELAY_DENIED,
  "zone-disabled": replies.ZONE_DISABLED,
  "unknown-recipient": replies.RCPT_UNKNOWN,
  "rule-inactive": replies.RULE_INACTIVE,
});

/**
 * The RCPT TO reply for a routing decision, or null when the recipient is accepted: one mapping,
 * shared with `mailroute route`, so what an operator reads is exactly what a sender would get.
 */
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

export function planRecipient(rcpt: string, sender: string, view: PlannerView): RecipientPlanning {
  const parsed = parseAddress(rcpt);
  if (!isAddressProblem(parsed) && parsed.domain === view.srsDomain && SrsRewriter.isSrsLocalPart(parsed.local)) {
    if (sender !== "" && !view.srsAcceptAnySender) return refused(replies.SRS_NULL_SENDER_ONLY, rcpt, "srs-not-null-sender");
    const reversed = view.srsReverse(`${parsed.local}@${parsed.domain}`);
    if (!reversed.ok) {
      const template = reversed.reason === "expired" ? replies.SRS_EXPIRED : reversed.reason === "bad-hash" ? replies.SRS_FORGED : replies.SRS_MALFORMED;
      return refused(template, rcpt, `srs-${reversed.reason}`);
    }
    return {
      ok: true,
      plan: { key: `srs:${reversed.address.toLowerCase()}`, kind: "srs-return", chains: [[reversed.address]], zone: null, account: DEFAULT_ROUTING_ACCOUNT, policy: DEFAULT_ZONE_POLICY },
      recipient: { address: rcpt, zone: null, action: "srs-return", ruleId: null },
    };
  }
  const decision = resolveRecipient(rcpt, view.routing);
  const refusal = rcptReplyFor(rcpt, decision, { workers: view.workers });
  if (decision.kind === "refuse") {
    const zone = decision.domain !== null && view.routing.zones.has(decision.domain) ? decision.domain : null;
    return { ok: false, reply: refusal!, reason: decision.reason, zone };
  }
  if (refusal !== null) return { ok: false, reply: refusal, reason: `rule-${decision.action.type}`, zone: decision.zone };
  const recipient: PlannedRecipient = { address: rcpt, zone: decision.zone, action: decision.action.type, ruleId: decision.ruleId };
  const zone = view.routing.zones.get(decision.zone);
  const zonePolicy = zone?.policy ?? DEFAULT_ZONE_POLICY;
  // a rule's own delivery mode wins over its zone's (issue 13: per zone and per rule)
  const policy = decision.deliveryMode === undefined || decision.deliveryMode === zonePolicy.deliveryMode ? zonePolicy : { ...zonePolicy, deliveryMode: decision.deliveryMode };
  // Recipients share a transaction only if the same authentication policy applies to all of them.
  const base = { key: `${planKey(decision)}|${JSON.stringify(policy)}`, zone: decision.zone, account: zone?.account ?? DEFAULT_ROUTING_ACCOUNT, policy };
  const action = decision.action;
  if (action.type === "forward") return { ok: true, plan: { ...base, kind: "forward", chains: action.chains }, recipient };
  if (action.type === "worker") return { ok: true, plan: { ...base, kind: "worker", script: action.script }, recipient };
  // rcptReplyFor refused reject (and worker without a runtime) above; what remains is drop.
  return { ok: true, plan: { ...base, kind: "drop" }, recipient };
}

function refused(template: ReplyTemplate, address: string, reason: string): RecipientPlanning {
  // SRS addresses are our hostname's, not a zone's: the operator's log, not an account's
  return { ok: false, reply: new SmtpReply(template, { address }), reason, zone: null };
}
