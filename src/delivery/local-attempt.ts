/**
 * Our own outcome for one destination's attempt when no upstream answered it — a DNS failure,
 * no connection, our deadline, an unmet MTA-STS policy, a held or unrecordable intent — built
 * from the reply catalogue like every other code we write. The attempt keeps `local` so the
 * mail core can tell the sender what happened in our words (FORWARDING_*), never as if the
 * destination server had said it.
 */
import { replies, type ReplyTemplate } from "../mail/reply-catalogue.ts";
import { SmtpReply } from "../mail/smtp-reply.ts";

export type LocalFailureKind =
  | "dns-failed"
  | "no-such-domain"
  | "null-mx"
  | "no-target"
  | "unreachable"
  | "timed-out"
  | "not-tried"
  | "mta-sts-unknown"
  | "tls-policy"
  | "held"
  | "ledger-unavailable";

const TEMPLATES: Readonly<Record<LocalFailureKind, ReplyTemplate>> = Object.freeze({
  "dns-failed": replies.ATTEMPT_DNS_FAILED,
  "no-such-domain": replies.ATTEMPT_NO_SUCH_DOMAIN,
  "null-mx": replies.ATTEMPT_NULL_MX,
  "no-target": replies.ATTEMPT_NO_TARGET,
  unreachable: replies.ATTEMPT_UNREACHABLE,
  "timed-out": replies.ATTEMPT_TIMED_OUT,
  "not-tried": replies.ATTEMPT_NOT_TRIED,
  "mta-sts-unknown": replies.ATTEMPT_MTA_STS_UNKNOWN,
  "tls-policy": replies.ATTEMPT_TLS_POLICY,
  held: replies.ATTEMPT_HELD,
  "ledger-unavailable": replies.ATTEMPT_LEDGER_UNAVAILABLE,
});

export interface LocalFailure {
  status: "temporary" | "permanent";
  code: number;
  /** "<enhanced> <text>", the shape an upstream's reply has after its code. */
  reply: string;
  local: LocalFailureKind;
}

export function localFailure(kind: LocalFailureKind, values: Readonly<Record<string, unknown>> = {}, enhanced?: string): LocalFailure {
  const reply = new SmtpReply(TEMPLATES[kind], values, enhanced === undefined ? {} : { enhanced });
  return { status: reply.temporary ? "temporary" : "permanent", code: reply.responseCode, reply: `${reply.enhanced} ${reply.text}`, local: kind };
}
