/**
 * The steps every received message takes before its plan's own: authenticate it, apply the
 * zone's policy to the result, score it, and write what we learned into the header lines we
 * prepend. None rewrites the body or an existing header (RFC 5321 §4.4 trace fields, RFC 8601).
 */
import { decideAuthPolicy } from "../inbound/auth-policy.ts";
import { checkReverseDns } from "../inbound/reverse-dns.ts";
import { scoreMessage, spamHeaders } from "../inbound/spam-score.ts";
import { receivedHeader } from "../delivery/trace-header.ts";
import type { MailDependencies } from "./mail-dependencies.ts";
import type { MessageContext } from "./message-context.ts";
import { replies } from "./reply-catalogue.ts";
import { SmtpReply } from "./smtp-reply.ts";

export async function authenticate(context: MessageContext, deps: MailDependencies): Promise<SmtpReply | null> {
  if (deps.authenticate === null) return null;
  context.auth = await deps.authenticate({
    message: context.spool.createReadStream(),
    clientIp: context.clientIp,
    helo: context.clientHelo,
    mailFrom: context.mailFrom,
    hostname: deps.hostname,
    resolver: deps.resolver,
    timeoutMs: deps.authTimeoutMs,
  });
  return null;
}

export async function enforcePolicy(context: MessageContext, deps: MailDependencies): Promise<SmtpReply | null> {
  if (context.auth === null) return null;
  const policy = context.plan.policy;
  const decision = decideAuthPolicy(context.auth, {
    enforceDmarc: policy.enforceDmarc,
    // SRS returns too (issue 8): our HMAC proves the address is ours, not that the bounce is
    // genuine; waiving the check made every valid SRS address a relay for unauthenticated mail.
    requireSpfOrDkim: policy.requireAuth,
    quarantineAction: policy.rejectQuarantine ? "reject" : "accept",
  });
  if (decision.verdict === "accept") return null;
  if (decision.verdict === "accept-marked" || context.trusted) {
    context.authMark = decision.verdict === "accept-marked" ? decision.reason : `trusted-client:${decision.reason}`;
    return null;
  }
  if (decision.verdict === "tempfail") return new SmtpReply(replies.AUTH_TEMPFAIL, { hop: deps.hostname, ...decision.values });
  return new SmtpReply(replies[decision.reply], decision.values);
}

export async function score(context: MessageContext, deps: MailDependencies): Promise<SmtpReply | null> {
  const reverse = await (context.reverseLookup ?? checkReverseDns(context.clientIp, deps.resolver));
  if (reverse.verdict === "confirmed") context.reverseName = reverse.name;
  context.spam = scoreMessage({
    auth: context.auth,
    // A listed client is refused at connect; reaching DATA means it was not listed.
    dnsblListed: false,
    reverseDns: reverse.verdict,
    head: context.spool.head(),
    receivedAt: context.receivedAt,
  });
  const threshold = context.plan.policy.spamThreshold;
  if (threshold !== null && context.spam.score > threshold && !context.trusted) {
    return new SmtpReply(replies.SPAM_REJECT, { score: context.spam.score, threshold });
  }
  return null;
}

export async function addTraceHeaders(context: MessageContext, deps: MailDependencies): Promise<SmtpReply | null> {
  const lines: string[] = [];
  if (context.auth !== null) lines.push(`Authentication-Results: ${context.auth.authenticationResults}`);
  if (context.spam !== null) lines.push(...spamHeaders(context.spam));
  if (context.authMark !== null) lines.push(`X-Mailroute-Auth-Warning: ${context.authMark.replace(/[^\x21-\x7e]/g, "")}`);
  context.prefix.push(
    receivedHeader({
      clientHelo: context.clientHelo,
      clientAddress: context.clientIp,
      clientHostname: context.reverseName,
      hostname: deps.hostname,
      secure: context.secure,
      smtpUtf8: context.smtpUtf8,
      queueId: context.queueId,
      recipient: context.recipients.length === 1 ? context.recipients[0]! : null,
      date: context.receivedAt,
    }),
    Buffer.from(lines.map((line) => `${line}\r\n`).join("")),
  );
  return null;
}
