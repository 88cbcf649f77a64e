/**
 * The connection guard: abuse defences that act on commands rather than on messages (issues 3
 * and 8). At connect, the per-IP connection limit (counted synchronously, before any await, so
 * a burst cannot slip past it) and the DNS block lists; at MAIL FROM, the message rate; for
 * every command:
 *
 * - before MAIL, the commands-before-MAIL limit (ClientLimits; trusted networks exempt);
 * - per session, at most JUNK_COMMAND_LIMIT of NOOP, VRFY, EXPN, HELP, ETRN and MAIL inside a
 *   transaction (Postfix's smtpd_junk_command_limit), in a transaction or not: a client sending
 *   20,000 NOOPs is holding a slot, not sending mail;
 * - per transaction, at most `rcptCommandLimit` RCPT commands, whatever their answers
 *   (duplicates and 452s are not bounded by --max-recipients or the hard error limit).
 *
 * The per-command limits apply to every client, trusted or not: no legitimate MTA comes near
 * them. Each refusal comes from the reply catalogue, is logged once, and a 421 closes.
 */
import type { SMTPServerSession } from "./smtp-server-package.ts";
import type { Logger } from "../analytics/structured-log.ts";
import type { ClientLimits, LimitRefusal } from "../inbound/client-limits.ts";
import type { DnsblChecker } from "../inbound/dnsbl-checker.ts";
import { replies } from "../mail/reply-catalogue.ts";
import { SmtpReply } from "../mail/smtp-reply.ts";

/** Postfix's smtpd_junk_command_limit default. */
export const JUNK_COMMAND_LIMIT = 100;
const JUNK_COMMANDS: ReadonlySet<string> = new Set(["NOOP", "VRFY", "EXPN", "HELP", "ETRN"]);

export interface ConnectionGuard {
  onConnect(session: SMTPServerSession, callback: (error?: Error | null) => void): void;
  /** A refusal for a new transaction from this client, or null to go on. */
  admitMessage(session: SMTPServerSession): SmtpReply | null;
  /** Every command smtp-server is about to run: a refusal stops it (a 421 also closes). */
  command(name: string, session: SMTPServerSession): SmtpReply | null;
  onClose(session: SMTPServerSession): void;
}

export interface ConnectionGuardOptions {
  hostname: string;
  limits: ClientLimits | null;
  dnsbl: DnsblChecker | null;
  logger: Logger;
  /** RCPT commands per transaction (default: 10 × --max-recipients, at least 100). */
  rcptCommandLimit?: number;
}

interface CommandCounts {
  junk: number;
  rcpts: number;
}

export function createConnectionGuard(options: ConnectionGuardOptions): ConnectionGuard {
  const { hostname, limits, dnsbl, logger } = options;
  const rcptCommandLimit = options.rcptCommandLimit ?? 1_000;
  const counts = new Map<string, CommandCounts>();

  function countsOf(session: SMTPServerSession): CommandCounts {
    let entry = counts.get(session.id);
    if (entry === undefined) {
      entry = { junk: 0, rcpts: 0 };
      counts.set(session.id, entry);
    }
    return entry;
  }

  function limitReply(session: SMTPServerSession, refusal: LimitRefusal): SmtpReply {
    logger.log("warn", "client_limited", { session: session.id, client: session.remoteAddress, limit: refusal.limit });
    switch (refusal.limit) {
      case "connections":
        return new SmtpReply(replies.TOO_MANY_CONNECTIONS, { hop: hostname, client: refusal.client, limit: refusal.max });
      case "commands":
        return new SmtpReply(replies.TOO_MANY_COMMANDS, { hop: hostname, client: refusal.client, limit: refusal.max });
      case "messages":
        return new SmtpReply(replies.MESSAGE_RATE_LIMITED, { client: refusal.client, limit: refusal.max, seconds: Math.ceil((refusal.retryAfterMs ?? 60_000) / 1000) });
    }
  }

  function floodReply(session: SMTPServerSession, limit: "junk-commands" | "rcpt-commands"): SmtpReply {
    logger.log("warn", "client_limited", { session: session.id, client: session.remoteAddress, limit });
    return limit === "junk-commands"
      ? new SmtpReply(replies.TOO_MANY_JUNK_COMMANDS, { hop: hostname, limit: JUNK_COMMAND_LIMIT })
      : new SmtpReply(replies.TOO_MANY_RCPT_COMMANDS, { hop: hostname, limit: rcptCommandLimit });
  }

  return {
    onConnect(session, callback) {
      logger.log("info", "smtp_connect", { session: session.id, client: session.remoteAddress });
      const admitted = limits?.connectionOpened(session) ?? { ok: true as const };
      if (!admitted.ok) return callback(limitReply(session, admitted));
      if (dnsbl === null || dnsbl.zones.length === 0) return callback();
      dnsbl.check(session.remoteAddress).then(
        (verdict) => {
          if (verdict.listed) {
            logger.log("warn", "dnsbl_listed", { session: session.id, client: session.remoteAddress, zone: verdict.zone, codes: verdict.codes });
            return callback(new SmtpReply(replies.DNSBL_LISTED, { client: session.remoteAddress, zone: verdict.zone, codes: verdict.codes.join(", ") }));
          }
          for (const unavailable of verdict.unavailable) logger.log("warn", "dnsbl_unavailable", { session: session.id, zone: unavailable.zone, reason: unavailable.reason });
          callback();
        },
        (error: unknown) => {
          // Fail open: a broken block list must not turn into refused legitimate mail.
          logger.log("error", "dnsbl_failed", { session: session.id, error });
          callback();
        },
      );
    },
    admitMessage(session) {
      const admitted = limits?.messageStarted(session) ?? { ok: true as const };
      if (!admitted.ok) return limitReply(session, admitted);
      countsOf(session).rcpts = 0;
      return null;
    },
    command(name, session) {
      // A client leaving is let go.
      if (name === "QUIT") return null;
      const entry = countsOf(session);
      // a MAIL inside a transaction only ever gets 503: junk as well
      const junk = JUNK_COMMANDS.has(name) || (name === "MAIL" && Boolean(session.envelope.mailFrom));
      if (junk && ++entry.junk > JUNK_COMMAND_LIMIT) return floodReply(session, "junk-commands");
      if (session.envelope.mailFrom) {
        // Inside a transaction, RCPT has a bound of its own and DATA the message limits.
        if (name === "RCPT" && ++entry.rcpts > rcptCommandLimit) return floodReply(session, "rcpt-commands");
        return null;
      }
      if (limits === null) return null;
      const admitted = limits.commandBeforeMail(session);
      return admitted.ok ? null : limitReply(session, admitted);
    },
    onClose(session) {
      counts.delete(session.id);
      limits?.connectionClosed(session);
    },
  };
}
