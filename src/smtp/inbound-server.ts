/**
 * The inbound SMTP server (our MX), built on smtp-server.
 *
 * Promises:
 * - never an open relay: a recipient is accepted only when routing says one of our zones
 *   routes it, or it is a valid SRS return address of ours (DESIGN §3, §4);
 * - unknown recipients are refused at RCPT TO, never bounced later;
 * - one plan per transaction: a recipient whose plan differs from the first gets 452 4.5.3,
 *   so the single reply after DATA is true for every recipient (RFC 5321 §3.3);
 * - the reply after DATA is 250 only after every destination that must have the message
 *   accepted it upstream (in-session relay); otherwise the upstream's own answer;
 * - DATA is streamed and bounded by the SIZE limit (RFC 1870) without buffering the excess;
 *   content with a bare CR or LF is refused (line-ending-check.ts: SMTP smuggling);
 * - a slow client is cut off with 421 4.4.2 (session-deadlines.ts): each command within
 *   socketTimeoutMs, DATA within transactionTimeoutMs, the content at minDataRate or faster;
 * - an SRS return address accepts only the null sender, unless srsAcceptAnySender (postsrsd
 *   compatibility); its hash is checked only then, so other senders learn nothing about it;
 * - refused recipients reach the activity log as one summary per session (refusal-log.ts),
 *   never as a write on the SMTP path.
 */
import type { AddressInfo } from "node:net";
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from "smtp-server";
import type { EventRecorder, MailEvent } from "../analytics/event-recorder.ts";
import { RefusalLog } from "../analytics/refusal-log.ts";
import type { Logger } from "../analytics/structured-log.ts";
import { MessageSpool } from "../delivery/message-spool.ts";
import { SrsRewriter } from "../delivery/srs-rewriter.ts";
import type { ClientLimits } from "../inbound/client-limits.ts";
import type { DnsblChecker } from "../inbound/dnsbl-checker.ts";
import type { NetworkMatcher } from "../inbound/trusted-networks.ts";
import { isAddressProblem, normalizeDomain, parseAddress } from "../routing/email-address.ts";
import { planKey, resolveRecipient } from "../routing/resolve-recipient.ts";
import { DEFAULT_ZONE_POLICY, type RoutingTable } from "../routing/routing-table.ts";
import { applyTlsCredentials, type TlsCredentials } from "./tls-credentials.ts";
import { installCommandHook } from "./command-hook-shim.ts";
import { createConnectionGuard } from "./connection-guard.ts";
import { findConnection, type ConnectionView } from "./connection-view.ts";
import { installEnhancedCodeShim } from "./enhanced-code-shim.ts";
import { LineEndingCheck, scanLineEndings } from "./line-ending-check.ts";
import { installLineLengthShim } from "./line-length-shim.ts";
import { installPipelinedDataShim } from "./pipelined-data-shim.ts";
import { SessionDeadlines } from "./session-deadlines.ts";
import { newMessageContext, runMessagePipeline, type PipelineDependencies, type Plan } from "./message-pipeline.ts";
import type { WorkerReport } from "./worker-step.ts";
import { rcptReplyFor } from "./recipient-replies.ts";
import { replies, type ReplyTemplate } from "./reply-catalogue.ts";
import { SmtpReply } from "./smtp-reply.ts";
import { eventColumns } from "../analytics/event-columns.ts";
import { eventOutcome } from "../analytics/event-outcome.ts";
import { replyCodeLabel, smtpRepliesTotal, smtpSessionsOpen } from "../analytics/metrics.ts";

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
  /** Accept mail to our SRS addresses from any sender, as postsrsd does (default: null sender only). */
  srsAcceptAnySender?: boolean;
}

export interface InboundDependencies {
  routing: () => RoutingTable;
  srs: SrsRewriter;
  pipeline: Omit<PipelineDependencies, "hostname" | "srs">;
  events: EventRecorder;
  logger: Logger;
  limits: ClientLimits | null;
  dnsbl: DnsblChecker | null;
  trusted: NetworkMatcher;
  now?: () => Date;
  /** false while the node cannot reach its shared database (cluster mode): RCPT answers 451, never routes on stale state. */
  storeAvailable?: () => boolean;
}

interface AcceptedRecipient {
  address: string;
  zone: string | null;
  action: string;
  ruleId: string | null;
}

interface Transaction {
  plan: Plan | null;
  recipients: AcceptedRecipient[];
  started: number;
}


export interface InboundServer {
  listen(port: number, host: string): Promise<AddressInfo>;
  close(): Promise<void>;
  readonly connections: number;
  /** Whether the SMTP listener is open (health checks). */
  readonly listening: boolean;
  /**
   * Runs the Email Worker routed for `to` on a message handed in directly (the
   * /cdn-cgi/handler/email development endpoint, as `wrangler dev` offers), through the same
   * pipeline as SMTP mail, minus inbound authentication.
   */
  runWorkerFor(input: { from: string; to: string; raw: Buffer }): Promise<{ reply: string; worker: WorkerReport | null } | { refused: string }>;
}

export function createInboundServer(options: InboundServerOptions, deps: InboundDependencies): InboundServer {
  installEnhancedCodeShim();
  installPipelinedDataShim();
  installLineLengthShim();
  const now = deps.now ?? (() => new Date());
  const logger = deps.logger;
  const transactions = new Map<string, Transaction>();
  const srsDomain = normalizeDomain(options.hostname) ?? options.hostname.toLowerCase();
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

  function logRefusal(session: SMTPServerSession, rcpt: string, reply: SmtpReply, reason: string): SmtpReply {
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
    logger.log("info", "rcpt_refused", { session: session.id, client: session.remoteAddress, from, rcpt, reason, code: reply.responseCode, enhanced: reply.enhanced });
    // The activity log shows refusals too (as Cloudflare's does): "why did my mail not arrive?" —
    // summarised per session and rate-limited per client, written in batches off this path.
    refusalLog.note({ session: session.id, client: session.remoteAddress, from, rcpt, reason, code: reply.responseCode, line: reply.line });
    return reply;
  }

  function planForRecipient(session: SMTPServerSession, rcpt: string): { plan: Plan; recipient: AcceptedRecipient } | SmtpReply {
    const parsed = parseAddress(rcpt);
    if (!isAddressProblem(parsed) && parsed.domain === srsDomain && SrsRewriter.isSrsLocalPart(parsed.local)) {
      // Bounces come from the null sender (RFC 5321 §4.5.5). Checked before the hash, so a
      // sender who may not use the address cannot use it to test guesses either.
      const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
      if (sender !== "" && options.srsAcceptAnySender !== true) return refuse(session, rcpt, replies.SRS_NULL_SENDER_ONLY, {}, "srs-not-null-sender");
      const reversed = deps.srs.reverse(`${parsed.local}@${parsed.domain}`);
      if (!reversed.ok) {
        const template = reversed.reason === "expired" ? replies.SRS_EXPIRED : reversed.reason === "bad-hash" ? replies.SRS_FORGED : replies.SRS_MALFORMED;
        return refuse(session, rcpt, template, {}, `srs-${reversed.reason}`);
      }
      return {
        plan: { key: `srs:${reversed.address.toLowerCase()}`, kind: "srs-return", chains: [[reversed.address]], zone: null, policy: DEFAULT_ZONE_POLICY },
        recipient: { address: rcpt, zone: null, action: "srs-return", ruleId: null },
      };
    }
    const decision = resolveRecipient(rcpt, deps.routing());
    const refusal = rcptReplyFor(rcpt, decision, { workers: deps.pipeline.workers !== null });
    if (refusal !== null || decision.kind === "refuse") {
      const reason = decision.kind === "refuse" ? decision.reason : `rule-${decision.action.type}`;
      logRefusal(session, rcpt, refusal!, reason);
      return refusal!;
    }
    const recipient: AcceptedRecipient = { address: rcpt, zone: decision.zone, action: decision.action.type, ruleId: decision.ruleId };
    const action = decision.action;
    const policy = deps.routing().zones.get(decision.zone)?.policy ?? DEFAULT_ZONE_POLICY;
    // Recipients share a transaction only if the same authentication policy applies to all of them.
    const key = `${planKey(decision)}|${JSON.stringify(policy)}`;
    if (action.type === "forward") return { plan: { key, kind: "forward", chains: action.chains, zone: decision.zone, policy }, recipient };
    if (action.type === "worker") return { plan: { key, kind: "worker", script: action.script, chains: [], zone: decision.zone, policy }, recipient };
    // rcptReplyFor refused reject (and worker without a runtime) above; what remains is drop.
    return { plan: { key, kind: "drop", chains: [], zone: decision.zone, policy }, recipient };
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
    const spool = new MessageSpool({ maxSize: options.maxMessageSize, spoolDir: options.spoolDir });
    const started = Date.now();
    try {
      const lineEndings = new LineEndingCheck();
      await spool.fill(scanLineEndings(stream, lineEndings));
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
      const context = newMessageContext({
        sessionId: session.id,
        queueId: `${session.id}.${(++queueCounter).toString(36)}`,
        clientIp: session.remoteAddress,
        clientHelo: session.hostNameAppearsAs ?? "unknown",
        mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
        recipients: transaction.recipients.map((entry) => entry.address),
        secure: session.secure,
        smtpUtf8: Boolean(mailFromArgs && mailFromArgs.SMTPUTF8),
        trusted: deps.trusted(session.remoteAddress),
        plan: transaction.plan,
        spool,
        receivedAt: now(),
      });
      const reply = await runMessagePipeline(context, { ...deps.pipeline, hostname: options.hostname, srs: deps.srs });
      const outcome = eventOutcome({ replyCode: reply.responseCode, relayStatus: context.relay?.status ?? null, workerOutcome: context.worker?.outcome ?? null });
      smtpRepliesTotal.inc({ code: replyCodeLabel(reply.responseCode) });
      await recordAll(
        transaction,
        { session_id: session.id, client_ip: session.remoteAddress, message_id: context.headers.messageId, subject: context.headers.subject, mail_from: context.mailFrom, size: spool.size },
        started,
        context.plan.kind,
        outcome,
        reply.responseCode,
        reply.line,
        {
          queue: context.queueId,
          sender: context.upstreamFrom,
          auth: context.auth?.raw ?? null,
          authMark: context.authMark,
          spam: context.spam,
          signed: context.signed && { dkim: context.signed.dkim, arc: context.signed.arc, skipped: context.signed.skipped },
          chains: context.relay?.chains ?? [],
          worker: context.worker,
        },
        eventColumns(context),
      );
      logger.log(reply.responseCode < 400 ? "info" : "warn", "message_done", {
        session: session.id,
        queue: context.queueId,
        from: context.mailFrom,
        rcpts: context.recipients,
        outcome,
        code: reply.responseCode,
        enhanced: reply.enhanced,
        spf: context.auth?.spf,
        dkim: context.auth?.dkim,
        dmarc: context.auth?.dmarc,
        spam: context.spam?.score,
        destinations: context.relay?.chains.map((chain) => ({ status: chain.status, to: chain.deliveredTo, attempts: chain.attempts.map((a) => ({ to: a.destination, status: a.status, upstream: a.upstream, reply: a.reply, ledger: a.fromLedger === true })) })),
        ms: Date.now() - started,
      });
      if (reply.responseCode >= 400) throw reply;
      return reply.message;
    } finally {
      await spool.dispose();
    }
  }

  async function recordAll(transaction: Transaction, base: Omit<MailEvent, "received_at" | "rcpt_to" | "zone" | "action" | "outcome" | "reply_code" | "reply_text" | "duration_ms" | "detail">, started: number, action: string, outcome: string, code: number, text: string, detail: unknown, columns: Partial<MailEvent> = {}) {
    const receivedAt = now().toISOString();
    await deps.events.record(
      transaction.recipients.map((recipient) => ({
        ...base,
        received_at: receivedAt,
        rcpt_to: recipient.address,
        zone: recipient.zone,
        action,
        outcome,
        reply_code: code,
        reply_text: text,
        duration_ms: Date.now() - started,
        detail: JSON.stringify(detail),
        ...columns,
      })),
    );
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
  installCommandHook(server, function guardCommand(name, session) {
    deadlines.command(session.id);
    return guard.command(name, session);
  });

  async function runWorkerFor(input: { from: string; to: string; raw: Buffer }): Promise<{ reply: string; worker: WorkerReport | null } | { refused: string }> {
    const session = { id: `http-${(++queueCounter).toString(36)}`, remoteAddress: "127.0.0.1", envelope: { mailFrom: false, rcptTo: [] } } as unknown as SMTPServerSession;
    const result = planForRecipient(session, input.to);
    if (result instanceof SmtpReply) return { refused: result.line };
    if (result.plan.kind !== "worker") return { refused: `${input.to} is routed by a rule of action "${result.plan.kind}", not to an Email Worker` };
    const spool = new MessageSpool({ maxSize: options.maxMessageSize, spoolDir: options.spoolDir });
    try {
      await spool.write(input.raw);
      if (spool.exceeded) return { refused: new SmtpReply(replies.MESSAGE_TOO_BIG, { limit: options.maxMessageSize }).line };
      const context = newMessageContext({
        sessionId: session.id,
        queueId: `${session.id}.1`,
        clientIp: "127.0.0.1",
        clientHelo: "cdn-cgi.handler",
        mailFrom: input.from,
        recipients: [input.to],
        secure: false,
        smtpUtf8: false,
        trusted: true,
        plan: result.plan,
        spool,
        receivedAt: now(),
      });
      const reply = await runMessagePipeline(context, { ...deps.pipeline, authenticate: null, hostname: options.hostname, srs: deps.srs });
      return { reply: reply.line, worker: context.worker };
    } finally {
      await spool.dispose();
    }
  }

  return {
    runWorkerFor,
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
