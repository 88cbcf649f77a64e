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
 * - an idle client is cut off with 421 4.4.2 after socketTimeoutMs.
 */
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from "smtp-server";
import type { EventRecorder, MailEvent } from "../analytics/event-recorder.ts";
import type { Logger } from "../analytics/structured-log.ts";
import { readHeaderFields } from "../delivery/header-block.ts";
import { messageFingerprint } from "../delivery/message-fingerprint.ts";
import { MessageSpool } from "../delivery/message-spool.ts";
import { relayMessage, representativeFailure, type RelayDependencies, type RelayOutcome } from "../delivery/relay-message.ts";
import { SrsRewriter } from "../delivery/srs-rewriter.ts";
import { receivedHeader } from "../delivery/trace-header.ts";
import type { DestinationChains } from "../routing/destination-expression.ts";
import { isAddressProblem, normalizeDomain, parseAddress } from "../routing/email-address.ts";
import { planKey, resolveRecipient } from "../routing/resolve-recipient.ts";
import type { RoutingTable } from "../routing/routing-table.ts";
import { installEnhancedCodeShim } from "./enhanced-code-shim.ts";
import { rcptReplyFor } from "./recipient-replies.ts";
import { replies, type ReplyTemplate } from "./reply-catalogue.ts";
import { SmtpReply } from "./smtp-reply.ts";

export interface InboundServerOptions {
  hostname: string;
  maxMessageSize: number;
  maxRecipients: number;
  socketTimeoutMs: number;
  closeTimeoutMs: number;
  maxClients: number;
  spoolDir?: string;
  tls?: { key: Buffer | string; cert: Buffer | string };
}

export interface InboundDependencies {
  routing: () => RoutingTable;
  srs: SrsRewriter;
  relay: RelayDependencies;
  events: EventRecorder;
  logger: Logger;
  now?: () => Date;
}

type Plan = {
  key: string;
  kind: "forward" | "drop" | "srs-return";
  chains: DestinationChains;
};

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
}

export function createInboundServer(options: InboundServerOptions, deps: InboundDependencies): InboundServer {
  installEnhancedCodeShim();
  const now = deps.now ?? (() => new Date());
  const logger = deps.logger;
  const transactions = new Map<string, Transaction>();
  const srsDomain = normalizeDomain(options.hostname) ?? options.hostname.toLowerCase();
  let queueCounter = 0;

  function refuse(session: SMTPServerSession, rcpt: string, template: ReplyTemplate, values: Record<string, unknown>, reason: string): SmtpReply {
    return logRefusal(session, rcpt, new SmtpReply(template, { address: rcpt, ...values }), reason);
  }

  function logRefusal(session: SMTPServerSession, rcpt: string, reply: SmtpReply, reason: string): SmtpReply {
    logger.log("info", "rcpt_refused", { session: session.id, client: session.remoteAddress, from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null, rcpt, reason, code: reply.responseCode, enhanced: reply.enhanced });
    return reply;
  }

  function planForRecipient(session: SMTPServerSession, rcpt: string): { plan: Plan; recipient: AcceptedRecipient } | SmtpReply {
    const parsed = parseAddress(rcpt);
    if (!isAddressProblem(parsed) && parsed.domain === srsDomain && SrsRewriter.isSrsLocalPart(parsed.local)) {
      const reversed = deps.srs.reverse(`${parsed.local}@${parsed.domain}`);
      if (!reversed.ok) {
        const template = reversed.reason === "expired" ? replies.SRS_EXPIRED : reversed.reason === "bad-hash" ? replies.SRS_FORGED : replies.SRS_MALFORMED;
        return refuse(session, rcpt, template, {}, `srs-${reversed.reason}`);
      }
      return {
        plan: { key: `srs:${reversed.address.toLowerCase()}`, kind: "srs-return", chains: [[reversed.address]] },
        recipient: { address: rcpt, zone: null, action: "srs-return", ruleId: null },
      };
    }
    const decision = resolveRecipient(rcpt, deps.routing());
    const refusal = rcptReplyFor(rcpt, decision);
    if (refusal !== null || decision.kind === "refuse") {
      const reason = decision.kind === "refuse" ? decision.reason : `rule-${decision.action.type}`;
      logRefusal(session, rcpt, refusal!, reason);
      return refusal!;
    }
    const recipient: AcceptedRecipient = { address: rcpt, zone: decision.zone, action: decision.action.type, ruleId: decision.ruleId };
    const action = decision.action;
    if (action.type === "forward") return { plan: { key: planKey(decision), kind: "forward", chains: action.chains }, recipient };
    // rcptReplyFor refused reject and worker above; what remains is drop.
    return { plan: { key: planKey(decision), kind: "drop", chains: [] }, recipient };
  }

  function onMailFrom(_address: SMTPServerAddress, session: SMTPServerSession, callback: (error?: Error | null) => void): void {
    transactions.set(session.id, { plan: null, recipients: [], started: Date.now() });
    callback();
  }

  function onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (error?: Error | null) => void): void {
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
      await spool.fill(stream);
      if (stream.sizeExceeded || spool.exceeded) {
        logger.log("info", "message_too_big", { session: session.id, size: spool.received });
        throw new SmtpReply(replies.MESSAGE_TOO_BIG, { limit: options.maxMessageSize });
      }
      if (transaction === undefined || transaction.plan === null) throw new SmtpReply(replies.LOCAL_ERROR, { hop: options.hostname });
      const plan = transaction.plan;
      const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
      const headers = readHeaderFields(spool.head());
      const queueId = `${session.id}.${(++queueCounter).toString(36)}`;
      const recipients = transaction.recipients.map((entry) => entry.address);
      const base = {
        session_id: session.id,
        client_ip: session.remoteAddress,
        message_id: headers.messageId,
        subject: headers.subject,
        mail_from: mailFrom,
        size: spool.size,
      };
      if (plan.kind === "drop") {
        await recordAll(transaction, base, started, "drop", "dropped", 250, "dropped by rule", {});
        logger.log("info", "message_dropped", { session: session.id, queue: queueId, rcpts: recipients.length });
        return new SmtpReply(replies.ACCEPTED_DROPPED, { id: queueId }).message;
      }
      const trace = receivedHeader({
        clientHelo: session.hostNameAppearsAs ?? "unknown",
        clientAddress: session.remoteAddress,
        clientHostname: session.clientHostname && !session.clientHostname.startsWith("[") ? session.clientHostname : null,
        hostname: options.hostname,
        secure: session.secure,
        smtpUtf8: Boolean(session.envelope.mailFrom && (session.envelope.mailFrom.args as Record<string, unknown> | false | undefined) && (session.envelope.mailFrom.args as Record<string, unknown>).SMTPUTF8),
        queueId,
        recipient: recipients.length === 1 ? recipients[0]! : null,
        date: now(),
      });
      // SRS (DESIGN §4): our envelope sender, so SPF passes at the destination and bounces come back to us.
      const upstreamFrom = plan.kind === "srs-return" ? mailFrom : deps.srs.forward(mailFrom);
      const fingerprint = messageFingerprint({ messageId: headers.messageId, mailFrom, recipients, contentSha256: spool.sha256 });
      const outcome = await relayMessage(
        { chains: plan.chains, mailFrom: upstreamFrom, fingerprint, size: spool.size + trace.length, message: () => spool.createReadStream(trace) },
        deps.relay,
      );
      const reply = replyFor(outcome, queueId);
      const outcomeName = { delivered: "delivered", partial: "partial", temporary: "deferred", permanent: "failed" }[outcome.status];
      await recordAll(transaction, base, started, plan.kind, outcomeName, reply.responseCode, reply.line, { queue: queueId, fingerprint, sender: upstreamFrom, chains: outcome.chains });
      logger.log(outcome.status === "delivered" ? "info" : "warn", "message_relayed", {
        session: session.id,
        queue: queueId,
        from: mailFrom,
        rcpts: recipients,
        outcome: outcome.status,
        code: reply.responseCode,
        enhanced: reply.enhanced,
        destinations: outcome.chains.map((chain) => ({ status: chain.status, to: chain.deliveredTo, attempts: chain.attempts.map((a) => ({ to: a.destination, status: a.status, upstream: a.upstream, reply: a.reply, ledger: a.fromLedger === true })) })),
        ms: Date.now() - started,
      });
      if (reply.responseCode >= 400) throw reply;
      return reply.message;
    } finally {
      await spool.dispose();
    }
  }

  function replyFor(outcome: RelayOutcome, queueId: string): SmtpReply {
    const delivered = outcome.chains.filter((chain) => chain.status === "delivered").length;
    switch (outcome.status) {
      case "delivered":
        return new SmtpReply(replies.ACCEPTED, { id: queueId, count: delivered });
      case "partial":
        return new SmtpReply(replies.ACCEPTED_PARTIAL, { id: queueId, count: delivered, failed: outcome.chains.length - delivered });
      case "temporary":
      case "permanent": {
        const klass = outcome.status === "temporary" ? 4 : 5;
        const failure = representativeFailure(outcome, outcome.status);
        const template = klass === 4 ? replies.UPSTREAM_TEMPORARY : replies.UPSTREAM_PERMANENT;
        if (failure === null) return new SmtpReply(template, { hop: options.hostname, destination: "?", upstream: "no answer" });
        const upstream = failure.upstream === null ? failure.reply : `${failure.upstream} said: ${failure.reply}`;
        return new SmtpReply(template, { hop: options.hostname, destination: failure.destination, upstream }, { enhanced: enhancedOf(failure.reply, klass) ?? template.enhanced });
      }
    }
  }

  async function recordAll(transaction: Transaction, base: Omit<MailEvent, "received_at" | "rcpt_to" | "zone" | "action" | "outcome" | "reply_code" | "reply_text" | "duration_ms" | "detail">, started: number, action: string, outcome: string, code: number, text: string, detail: unknown) {
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
      })),
    );
  }

  const server = new SMTPServer({
    name: options.hostname,
    banner: "mailroute ESMTP",
    size: options.maxMessageSize,
    rejectOversized: true,
    authOptional: true,
    // An MX takes no logins (AUTH on port 25 only invites credential stuffing).
    disabledCommands: options.tls ? ["AUTH"] : ["AUTH", "STARTTLS"],
    hideSTARTTLS: !options.tls,
    ...(options.tls ? { key: options.tls.key, cert: options.tls.cert } : {}),
    hidePIPELINING: false,
    hide8BITMIME: false,
    hideSMTPUTF8: false,
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    socketTimeout: options.socketTimeoutMs,
    closeTimeout: options.closeTimeoutMs,
    maxClients: options.maxClients,
    logger: false,
    onConnect(session, callback) {
      logger.log("info", "smtp_connect", { session: session.id, client: session.remoteAddress });
      callback();
    },
    onMailFrom,
    onRcptTo,
    onData(stream, session, callback) {
      handleData(stream, session).then(
        (message) => callback(null, message),
        (error: unknown) => {
          if (error instanceof SmtpReply) return callback(error);
          logger.log("error", "data_failed", { session: session.id, error });
          stream.resume();
          callback(new SmtpReply(replies.LOCAL_ERROR, { hop: options.hostname }));
        },
      );
    },
    onClose(session) {
      transactions.delete(session.id);
    },
  });
  server.on("error", (error) => logger.log("warn", "smtp_error", { error }));

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
    close() {
      return new Promise((resolve) => server.close(() => resolve()));
    },
    get connections() {
      return (server as unknown as { connections: Set<unknown> }).connections.size;
    },
  };
}

function enhancedOf(reply: string, klass: 4 | 5): string | null {
  const match = /^(?:\d{3}[ -])?([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(reply.trim());
  if (match === null || Number(match[1]) !== klass) return null;
  return `${match[1]}.${match[2]}.${match[3]}`;
}

export function newSessionId(): string {
  return randomBytes(8).toString("hex");
}
