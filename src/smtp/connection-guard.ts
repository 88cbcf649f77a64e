/**
 * The connection guard: abuse defences that act before a transaction (issue 3). At connect, the
 * per-IP connection limit (counted synchronously, before any await, so a burst cannot slip
 * past it) and the DNS block lists; at MAIL FROM, the message rate; for every command before
 * MAIL, the command limit. Each refusal comes from the reply catalogue and is logged once.
 */
import type { SMTPServer, SMTPServerSession } from "smtp-server";
import type { Logger } from "../analytics/structured-log.ts";
import type { ClientLimits, LimitRefusal } from "../inbound/client-limits.ts";
import type { DnsblChecker } from "../inbound/dnsbl-checker.ts";
import { installCommandHook } from "./command-hook-shim.ts";
import { replies } from "./reply-catalogue.ts";
import { SmtpReply } from "./smtp-reply.ts";

export interface ConnectionGuard {
  onConnect(session: SMTPServerSession, callback: (error?: Error | null) => void): void;
  /** A refusal for a new transaction from this client, or null to go on. */
  admitMessage(session: SMTPServerSession): SmtpReply | null;
  onClose(session: SMTPServerSession): void;
  install(server: SMTPServer): void;
}

export function createConnectionGuard(options: { hostname: string; limits: ClientLimits | null; dnsbl: DnsblChecker | null; logger: Logger }): ConnectionGuard {
  const { hostname, limits, dnsbl, logger } = options;

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
      return admitted.ok ? null : limitReply(session, admitted);
    },
    onClose(session) {
      limits?.connectionClosed(session);
    },
    install(server) {
      if (limits === null) return;
      installCommandHook(server, function commandsBeforeMail(name, session) {
        // Inside a transaction, RCPT and DATA have limits of their own.
        if (session.envelope.mailFrom || name === "QUIT") return null;
        const admitted = limits.commandBeforeMail(session);
        return admitted.ok ? null : limitReply(session, admitted);
      });
    },
  };
}
