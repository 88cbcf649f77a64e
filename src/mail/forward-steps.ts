/**
 * The last steps of the plans that relay the received message itself (a rule's forward, an
 * SRS return) and of a drop:
 *
 *   prepareForward → dispatchForward        (forward, srs-return)
 *   acceptDropped                            (drop)
 *
 * Before them, while the message is authenticated, `readLedgerAhead` starts the dispatcher's
 * read of the delivery ledger for the copy (issue 11: one store round trip off the path).
 *
 * Promises: the only 250 is dispatchForward's, and only once the dispatcher reports every
 * primary delivered (or the rest refused permanently); the envelope sender is SRS-rewritten for
 * forwards (DESIGN §4: SPF passes at the destination, bounces come back to us) and is the
 * original sender for an SRS return.
 */
import { messageFingerprint } from "../delivery/message-fingerprint.ts";
import { toAsciiAddress } from "../routing/email-address.ts";
import { replyForRelay } from "./dispatch-reply.ts";
import { dispatcherFor, type CopyOrigin } from "./dispatcher.ts";
import type { MailDependencies } from "./mail-dependencies.ts";
import type { MessageContext } from "./message-context.ts";
import { prepareCopy, spoolBody } from "./prepare-copy.ts";
import { replies } from "./reply-catalogue.ts";
import { planChains } from "./routing-plan.ts";
import { SmtpReply } from "./smtp-reply.ts";

/** What makes the forwarded copy the same message for the delivery ledger (its fingerprint). */
function forwardIdentity(context: MessageContext) {
  return { messageId: context.headers.messageId, mailFrom: context.mailFrom, recipients: context.recipients, contentSha256: context.spool.sha256 };
}

/**
 * Starts the read of what the delivery ledger holds for this message's forwarded copy, where its
 * dispatcher reads ahead; null for other plans. Called once the content is in (headers read).
 */
export function readLedgerAhead(context: MessageContext, deps: MailDependencies): MessageContext["ledgerAhead"] {
  const plan = context.plan;
  if (plan.kind !== "forward" && plan.kind !== "srs-return") return null;
  const dispatcher = dispatcherFor(plan.policy.deliveryMode, { inSession: deps.dispatcher, queue: deps.queue });
  if (dispatcher.readAhead === undefined) return null;
  const fingerprint = messageFingerprint(forwardIdentity(context));
  return { fingerprint, view: dispatcher.readAhead(fingerprint) };
}

export async function prepareForward(context: MessageContext, deps: MailDependencies): Promise<SmtpReply | null> {
  const plan = context.plan;
  context.upstreamFrom = plan.kind === "srs-return" ? toAsciiAddress(context.mailFrom) : deps.srs.forward(toAsciiAddress(context.mailFrom));
  const prepared = await prepareCopy(
    {
      chains: planChains(plan),
      envelopeFrom: context.upstreamFrom,
      headers: Buffer.concat(context.prefix),
      body: spoolBody(context.spool),
      routingDomain: plan.zone ?? deps.hostname,
      // the zone opted out (migration 0006): its mail goes to the operator's own server
      sign: plan.policy.signOutbound,
      seal: { arc: context.auth === null ? null : (context.auth.arcForSealing as never), authenticationResults: context.auth?.authenticationResults ?? null },
      identity: forwardIdentity(context),
      // the copy's fingerprint is the one its ledger view was read ahead for
      ...(context.ledgerAhead === null ? {} : { fingerprint: context.ledgerAhead.fingerprint }),
    },
    deps.sign,
  );
  context.signed = prepared.signed;
  const ahead = context.ledgerAhead === null ? {} : { ledgerView: context.ledgerAhead.view };
  // the sender waits for dispatchForward's answer: what only records it follows the answer
  const afterReply = deps.afterReply === undefined ? {} : { afterReply: deps.afterReply };
  context.outbound = { ...prepared.request, origin: copyOrigin(context, context.mailFrom), ...ahead, ...afterReply };
  return null;
}

export async function dispatchForward(context: MessageContext, deps: MailDependencies): Promise<SmtpReply> {
  if (context.outbound === null) return new SmtpReply(replies.LOCAL_ERROR, { hop: deps.hostname });
  context.relay = await dispatcherFor(context.plan.policy.deliveryMode, { inSession: deps.dispatcher, queue: deps.queue }).dispatch(context.outbound);
  return replyForRelay(context.relay, context.queueId, deps.hostname);
}

/** Whose copy this is, for a queue to keep beside the bytes; `notify` hears of a final failure. */
export function copyOrigin(context: MessageContext, notify: string): CopyOrigin {
  return { account: context.plan.account, zone: context.plan.zone, recipients: context.recipients, notify, messageId: context.headers.messageId, subject: context.headers.subject };
}

export async function acceptDropped(context: MessageContext): Promise<SmtpReply> {
  return new SmtpReply(replies.ACCEPTED_DROPPED, { id: context.queueId });
}
