/**
 * The inbound SMTP server (our MX), built on smtp-server: a thin front end over the mail core
 * (src/mail/), which plans recipients and processes messages. This module moves bytes and
 * replies and keeps the session's own rules.
 *
 * Promises:
 * - never an open relay: a recipient is accepted only when the mail core plans it (one of our
 *   zones routes it, or it is a valid SRS return address of ours — DESIGN §3, §4);
 * - unknown recipients are refused at RCPT TO, never bounced later;
 * - one plan per transaction: a recipient whose plan differs from the first gets 452 4.5.3,
 *   so the single reply after DATA is true for every recipient (RFC 5321 §3.3);
 * - the reply after DATA is the mail core's: 250 only once every destination that must have
 *   the message accepted it (in-session relay); otherwise the upstream's own answer, or ours;
 * - DATA is streamed and bounded by the SIZE limit (RFC 1870) without buffering the excess;
 *   content with a bare CR or LF is refused (line-ending-check.ts: SMTP smuggling);
 * - a slow client is cut off with 421 4.4.2 (session-deadlines.ts): each command within
 *   socketTimeoutMs, DATA within transactionTimeoutMs, the content at minDataRate or faster;
 * - refused recipients reach the activity log as one summary per session (refusal-log.ts),
 *   never as a write on the SMTP path.
 */
import { tmpdir } from "node:os";
import type { AddressInfo } from "node:net";
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from "./smtp-server-package.ts";
import type { EventRecorder } from "../analytics/event-recorder.ts";
import { RefusalLog } from "../analytics/refusal-log.ts";
import type { Logger } from "../analytics/structured-log.ts";
import { MessageSpool } from "../delivery/message-spool.ts";
import type { ClientLimits } from "../inbound/client-limits.ts";
import type { DnsblChecker } from "../inbound/dnsbl-checker.ts";
import type { NetworkMatcher } from "../inbound/trusted-networks.ts";
import type { MailCore } from "../mail/mail-core.ts";
import type { PlannedRecipient } from "../mail/recipient-planner.ts";
import type { RoutingPlan } from "../mail/routing-plan.ts";
import { replies, type ReplyTemplate } from "../mail/reply-catalogue.ts";
import { SmtpReply } from "../mail/smtp-reply.ts";
import { replyCodeLabel, smtpRepliesTotal, smtpSessionsOpen } from "../analytics/metrics.ts";
import { applyTlsCredentials, type TlsCredentials } from "./tls-credentials.ts";
import { installCommandHook } from "./command-hook-shim.ts";
import { createConnectionGuard } from "./connection-guard.ts";
import { findConnection, type ConnectionView } from "./connection-view.ts";
import { installEnhancedCodeShim } from "./enhanced-code-shim.ts";
import { createGreetPause, DEFAULT_GREET_PAUSE_MS } from "./greet-pause.ts";
import { installGreetPause } from "./greet-pause-shim.ts";
import { LineEndingCheck, scanLineEndings } from "./line-ending-check.ts";
import { streamChunks } from "./stream-chunks.ts";
import { installLineLengthShim } from "./line-length-shim.ts";
import { installPipelinedDataShim } from "./pipelined-data-shim.ts";
import { installQuitCloseShim } from "./quit-close-shim.ts";
import { installReplyBatchingShim } from "./reply-batching-shim.ts";
import { installDataScanShim } from "./data-scan-shim.ts";
import { SessionDeadlines } from "./session-deadlines.ts";

export interface InboundServerOptions {
  hostname: string;
  maxMessageSize: number;
  maxRecipients: number;
  socketTimeoutMs: number;
  closeTimeoutMs: number;
  maxClients: number;
  spoolDir?: string;
  tls?: TlsCredentials;
  /** Proxies whose PROXY protocol header is believed (smtp-server useProxy); empty: none. */
  proxyProtocol?: readonly string[];
  /** From connect or the last message to the next DATA, ms (default 600,000). */
  transactionTimeoutMs?: number;
  /** Slowest DATA accepted, bytes/s: its deadline is socketTimeoutMs + bytes / rate (default 500). */
  minDataRate?: number;
  /** Pause before greeting a client not yet known to wait for it, ms (greet-pause.ts; default 100, 0: off). */
  greetPauseMs?: number;
}

export interface InboundDependencies {
  /** Plans recipients and processes messages (src/mail/): this front end only moves bytes and replies. */
  mail: MailCore;
  events: EventRecorder;
  logger: Logger;
  limits: ClientLimits | null;
  dnsbl: DnsblChecker | null;
  trusted: NetworkMatcher;
  now?: () => Date;
  /** false while the node cannot reach its shared database (cluster mode): RCPT answers 451, never routes on stale state. */
  storeAvailable?: () => boolean;
}

interface Transaction {
  plan: RoutingPlan | null;
  recipients: PlannedRecipient[];
  started: number;
}

export interface InboundServer {
  listen(port: number, host: string): Promise<AddressInfo>;
  close(): Promise<void>;
  readonly connections: number;
  /** Sessions that sent a command in the last `withinMs` (SessionDeadlines.activeWithin). */
  sessionsActiveWithin(withinMs: number): number;
  /** Whether the SMTP listener is open (health checks). */
  readonly listening: boolean;
}

export function createInboundServer(options: InboundServerOptions, deps: InboundDependencies): InboundServer {
  installEnhancedCodeShim();
  installPipelinedDataShim();
  installLineLengthShim();
  installDataScanShim();
  installReplyBatchingShim();
  installQuitCloseShim();
  const now = deps.now ?? (() => new Date());
  // os.tmpdir() reads the environment on every call: once per server, not once per message
  const spoolDir = options.spoolDir ?? tmpdir();
  const logger = deps.logger;
  const transactions = new Map<string, Transaction>();
  let queueCounter = 0;
  const guard = createConnectionGuard({
    hostname: options.hostname,
    limits: deps.limits,
    dnsbl: deps.dnsbl,
    logger,
    rcptCommandLimit: Math.max(100, 10 * options.maxRecipients),
  });
  const refusalLog = new RefusalLog(deps.events, logger);

  function refuse(session: SMTPServerSession, rcpt: string, template: ReplyTemplate, values: Record<string, unknown>, reason: string): SmtpReply {
    return logRefusal(session, rcpt, new SmtpReply(template, { address: rcpt, ...values }), reason);
  }

  function logRefusal(session: SMTPServerSession, rcpt: string, reply: SmtpReply, reason: string, zone: string | null = null): SmtpReply {
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
    logger.log("info", "rcpt_refused", { session: session.id, client: session.remoteAddress, from, rcpt, reason, code: reply.responseCode, enhanced: reply.enhanced });
    // The activity log shows refusals too (as Cloudflare's does): "why did my mail not arrive?" —
    // summarised per session and rate-limited per client, written in batches off this path.
    refusalLog.note({ session: session.id, client: session.remoteAddress, from, rcpt, reason, code: reply.responseCode, line: reply.line, zone });
    return reply;
  }

  function planForRecipient(session: SMTPServerSession, rcpt: string): { plan: RoutingPlan; recipient: PlannedRecipient } | SmtpReply {
    const planned = deps.mail.plan(rcpt, session.envelope.mailFrom ? session.envelope.mailFrom.address : "");
    if (!planned.ok) return logRefusal(session, rcpt, planned.reply, planned.reason, planned.zone);
    return planned;
  }

  function onMailFrom(_address: SMTPServerAddress, session: SMTPServerSession, callback: (error?: Error | null) => void): void {
    const refusal = guard.admitMessage(session);
    if (refusal !== null) return callback(refusal);
    transactions.set(session.id, { plan: null, recipients: [], started: Date.now() });
    callback();
  }

  // Postfix's smtpd_hard_error_limit: a client collecting refusals is probing (guessing
  // addresses, or SRS hashes); after this many in one session it is disconnected.
  const HARD_ERROR_LIMIT = 20;
  const refusals = new Map<string, number>();

  function onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (error?: Error | null) => void): void {
    rcptTo(address, session, (error) => {
      if (error instanceof SmtpReply) smtpRepliesTotal.inc({ code: replyCodeLabel(error.responseCode) });
      if (error instanceof SmtpReply && error.responseCode >= 500) {
        const count = (refusals.get(session.id) ?? 0) + 1;
        refusals.set(session.id, count);
        if (count > HARD_ERROR_LIMIT) {
          logger.log("warn", "client_limited", { session: session.id, client: session.remoteAddress, limit: "errors" });
          return callback(new SmtpReply(replies.TOO_MANY_ERRORS, { hop: options.hostname, limit: HARD_ERROR_LIMIT }));
        }
      }
      callback(error);
    });
  }

  function rcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (error?: Error | null) => void): void {
    let transaction = transactions.get(session.id);
    if (transaction === undefined) {
      transaction = { plan: null, recipients: [], started: Date.now() };
      transactions.set(session.id, transaction);
    }
    const rcpt = address.address;
    const duplicate = transaction.recipients.some((entry) => entry.address.toLowerCase() === rcpt.toLowerCase());
    if (!duplicate && transaction.recipients.length >= options.maxRecipients) {
      return callback(refuse(session, rcpt, replies.TOO_MANY_RECIPIENTS, { limit: options.maxRecipients }, "too-many-recipients"));
    }
    if (deps.storeAvailable?.() === false) return callback(refuse(session, rcpt, replies.STORE_UNAVAILABLE, { hop: options.hostname }, "store-unavailable"));
    const result = planForRecipient(session, rcpt);
    if (result instanceof SmtpReply) return callback(result);
    if (transaction.plan !== null && transaction.plan.key !== result.plan.key) {
      return callback(refuse(session, rcpt, replies.PLAN_DIFFERS, {}, "plan-differs"));
    }
    transaction.plan = result.plan;
    if (!duplicate) transaction.recipients.push(result.recipient);
    logger.log("info", "rcpt_accepted", { session: session.id, rcpt, action: result.plan.kind, zone: result.recipient.zone });
    callback();
  }

  async function handleData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const transaction = transactions.get(session.id);
    const spool = new MessageSpool({ maxSize: options.maxMessageSize, spoolDir });
    const started = Date.now();
    try {
      const lineEndings = new LineEndingCheck();
      // chunk by chunk as they came: iterating the stream itself joined waiting chunks (a copy)
      await spool.fill(scanLineEndings(streamChunks(stream), lineEndings));
      if (stream.sizeExceeded || spool.exceeded) {
        logger.log("info", "message_too_big", { session: session.id, size: spool.received });
        throw new SmtpReply(replies.MESSAGE_TOO_BIG, { limit: options.maxMessageSize });
      }
      const bare = lineEndings.finish();
      if (bare !== null) {
        logger.log("info", "message_bare_line_ending", { session: session.id, client: session.remoteAddress, bare });
        throw new SmtpReply(replies.BARE_LINE_ENDING, { char: bare });
      }
      if (transaction === undefined || transaction.plan === null) throw new SmtpReply(replies.LOCAL_ERROR, { hop: options.hostname });
      const mailFromArgs = session.envelope.mailFrom ? (session.envelope.mailFrom.args as Record<string, unknown> | false | undefined) : undefined;
      const { reply } = await deps.mail.receive({
        via: "smtp",
        started,
        sessionId: session.id,
        queueId: `${session.id}.${(++queueCounter).toString(36)}`,
        clientIp: session.remoteAddress,
        clientHelo: session.hostNameAppearsAs ?? "unknown",
        mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
        recipients: transaction.recipients,
        secure: session.secure,
        smtpUtf8: Boolean(mailFromArgs && mailFromArgs.SMTPUTF8),
        trusted: deps.trusted(session.remoteAddress),
        plan: transaction.plan,
        spool,
        receivedAt: now(),
      });
      if (reply.responseCode >= 400) throw reply;
      return reply.message;
    } finally {
      await spool.dispose();
    }
  }

  // Sessions counted in the open-sessions gauge (a refused connection is never counted).
  const opened = new Set<string>();
  const deadlines: SessionDeadlines = new SessionDeadlines(
    { commandMs: options.socketTimeoutMs, transactionMs: options.transactionTimeoutMs ?? 600_000, minDataRate: options.minDataRate ?? 500 },
    { hostname: options.hostname, logger, find: (sessionId): ConnectionView | null => findConnection(server, sessionId) },
  );
  const server: SMTPServer = new SMTPServer({
    name: options.hostname,
    banner: "mailroute ESMTP",
    size: options.maxMessageSize,
    rejectOversized: true,
    authOptional: true,
    // An MX takes no logins (AUTH on port 25 only invites credential stuffing).
    disabledCommands: options.tls ? ["AUTH"] : ["AUTH", "STARTTLS"],
    hideSTARTTLS: !options.tls,
    ...(options.tls ? options.tls.current() : {}),
    hidePIPELINING: false,
    hide8BITMIME: false,
    hideSMTPUTF8: false,
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    // Behind a load balancer every client would otherwise look like the balancer: one shared
    // rate limit, never checked against block lists.
    ...(options.proxyProtocol !== undefined && options.proxyProtocol.length > 0 ? { useProxy: [...options.proxyProtocol] } : {}),
    // smtp-server's idle timeout stays as a backstop behind our own deadlines, which answer first
    socketTimeout: options.socketTimeoutMs + 2 * deadlines.sweepMs,
    closeTimeout: options.closeTimeoutMs,
    maxClients: options.maxClients,
    logger: false,
    onConnect(session, callback) {
      guard.onConnect(session, (error) => {
        if (!error) {
          deadlines.opened(session.id, session.remoteAddress);
          smtpSessionsOpen.inc();
          opened.add(session.id);
        }
        callback(error);
      });
    },
    onMailFrom,
    onRcptTo,
    onData(stream, session, callback) {
      const answer = (error: Error | null, message?: string) => {
        deadlines.messageAnswered(session.id);
        callback(error, message);
      };
      handleData(stream, session).then(
        (message) => answer(null, message),
        (error: unknown) => {
          if (error instanceof SmtpReply) return answer(error);
          // A client hanging up in the middle of DATA is ordinary network life, not our fault.
          const disconnected = isClientDisconnect(error);
          logger.log(disconnected ? "info" : "error", "data_failed", { session: session.id, client: session.remoteAddress, reason: disconnected ? "client-disconnected" : "internal", error });
          stream.resume();
          answer(new SmtpReply(replies.LOCAL_ERROR, { hop: options.hostname }));
        },
      );
    },
    onClose(session) {
      transactions.delete(session.id);
      refusals.delete(session.id);
      deadlines.closed(session.id);
      refusalLog.sessionClosed(session.id);
      if (opened.delete(session.id)) smtpSessionsOpen.dec();
      guard.onClose(session);
    },
  });
  server.on("error", (error) => logger.log("warn", "smtp_error", { error }));
  const detachTls = options.tls ? applyTlsCredentials(server, options.tls) : () => undefined;
  installGreetPause(
    server,
    createGreetPause({
      pauseMs: options.greetPauseMs ?? DEFAULT_GREET_PAUSE_MS,
      trusted: (address) => deps.trusted(address),
      onVerdict(address, verdict) {
        if (verdict === "talked-early") logger.log("warn", "smtp_early_talker", { client: address });
      },
    }),
  );
  installCommandHook(server, function guardCommand(name, session) {
    deadlines.command(session.id);
    return guard.command(name, session);
  });

  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.server.once("error", reject);
        server.listen(port, host, () => {
          server.server.off("error", reject);
          resolve(server.server.address() as AddressInfo);
        });
      });
    },
    async close() {
      detachTls();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      deadlines.stop();
      await refusalLog.close();
    },
    get listening() {
      return server.server.listening;
    },
    sessionsActiveWithin(withinMs) {
      return deadlines.activeWithin(withinMs);
    },
    get connections() {
      return (server as unknown as { connections: Set<unknown> }).connections.size;
    },
  };
}

/** A DATA stream that ended because the client went away (smtp-server's ECONNECTION, a reset). */
function isClientDisconnect(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ECONNECTION" || code === "ERR_STREAM_PREMATURE_CLOSE" || code === "ECONNRESET" || code === "EPIPE";
}
