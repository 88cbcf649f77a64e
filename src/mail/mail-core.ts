/**
 * The transport-neutral mail core: what the SMTP front end and the HTTP email handler share.
 *
 *   plan(rcpt, sender)   → RoutingPlan or the catalogue refusal            (at RCPT TO)
 *   receive(message)     → the plan's steps, one event per recipient, one   (after DATA)
 *                          `message_done` log line, and the sender's reply
 *
 * Promises: a front end only moves bytes and replies; routing, authentication, signing,
 * dispatch, events and logs happen here, the same way for every front end. Every reply comes
 * from the reply catalogue. Recording an event never changes the reply (the recorder buffers
 * and retries on its own), and, given `deps.afterReply`, the reply does not wait for it either:
 * the write is handed there (store/pending-writes.ts), as the relay hands its acceptance writes.
 */
import { eventColumns } from "../analytics/event-columns.ts";
import { eventOutcome } from "../analytics/event-outcome.ts";
import type { EventRecorder, MailEvent } from "../analytics/event-recorder.ts";
import { replyCodeLabel, smtpRepliesTotal } from "../analytics/metrics.ts";
import type { Logger } from "../analytics/structured-log.ts";
import { normalizeDomain } from "../routing/email-address.ts";
import type { RoutingTable } from "../routing/routing-table.ts";
import type { MailDependencies } from "./mail-dependencies.ts";
import { newMessageContext, type MessageContext, type MessageFacts } from "./message-context.ts";
import { processMessage } from "./message-steps.ts";
import { planRecipient, type PlannedRecipient, type RecipientPlanning } from "./recipient-planner.ts";
import type { SmtpReply } from "./smtp-reply.ts";

export interface MailCoreOptions {
  deps: MailDependencies;
  routing: () => RoutingTable;
  /** Accept mail to our SRS addresses from any sender, as postsrsd does (default: null sender only). */
  srsAcceptAnySender?: boolean;
  events: EventRecorder;
  logger: Logger;
}

export interface ReceivedMessage extends Omit<MessageFacts, "recipients"> {
  recipients: readonly PlannedRecipient[];
  /**
   * `smtp`: a message from the MX — authenticated, counted in the SMTP reply metric and
   * recorded as events. `hand-in`: the trusted HTTP email handler (`wrangler dev`'s
   * /cdn-cgi/handler/email), which tests a worker: no inbound authentication, no events.
   */
  via: "smtp" | "hand-in";
  /** When the front end started receiving the message (event duration). */
  started: number;
}

export interface MailCore {
  plan(rcpt: string, sender: string): RecipientPlanning;
  receive(message: ReceivedMessage): Promise<{ reply: SmtpReply; context: MessageContext }>;
}

export function createMailCore(options: MailCoreOptions): MailCore {
  const { deps, logger } = options;
  const srsDomain = normalizeDomain(deps.hostname) ?? deps.hostname.toLowerCase();

  async function record(message: ReceivedMessage, context: MessageContext, reply: SmtpReply, outcome: string): Promise<void> {
    const receivedAt = context.receivedAt.toISOString();
    const detail = JSON.stringify({
      queue: context.queueId,
      sender: context.upstreamFrom,
      auth: context.auth?.raw ?? null,
      authMark: context.authMark,
      spam: context.spam,
      signed: context.signed && { dkim: context.signed.dkim, arc: context.signed.arc, skipped: context.signed.skipped },
      chains: context.relay?.chains ?? [],
      worker: context.worker,
    });
    const columns = eventColumns(context);
    const base: Omit<MailEvent, "received_at" | "rcpt_to" | "zone"> = {
      session_id: context.sessionId,
      client_ip: context.clientIp,
      message_id: context.headers.messageId,
      subject: context.headers.subject,
      mail_from: context.mailFrom,
      size: context.spool.size,
      action: context.plan.kind,
      outcome,
      reply_code: reply.responseCode,
      reply_text: reply.line,
      duration_ms: Date.now() - message.started,
      detail,
      ...columns,
    };
    await options.events.record(message.recipients.map((recipient) => ({ ...base, received_at: receivedAt, rcpt_to: recipient.address, zone: recipient.zone })));
  }

  return {
    plan(rcpt, sender) {
      return planRecipient(rcpt, sender, {
        routing: options.routing(),
        srsDomain,
        srsReverse: (address) => deps.srs.reverse(address),
        srsAcceptAnySender: options.srsAcceptAnySender === true,
        workers: deps.workers !== null,
      });
    },

    async receive(message) {
      const { via: _via, started: _started, recipients, ...facts } = message;
      const context = newMessageContext({ ...facts, recipients: recipients.map((recipient) => recipient.address) });
      const smtp = message.via === "smtp";
      const reply = await processMessage(context, smtp ? deps : { ...deps, authenticate: null });
      const outcome = eventOutcome({ replyCode: reply.responseCode, relayStatus: context.relay?.status ?? null, workerOutcome: context.worker?.outcome ?? null, queued: context.relay?.queued !== undefined });
      if (smtp) {
        smtpRepliesTotal.inc({ code: replyCodeLabel(reply.responseCode) });
        const recorded = record(message, context, reply, outcome);
        if (deps.afterReply === undefined) await recorded;
        // the recorder logs its own failed inserts; this is anything else going wrong in record()
        else deps.afterReply.track(recorded.catch((error: unknown) => logger.log("error", "event_record_failed", { session: context.sessionId, queue: context.queueId, error })));
      }
      logger.log(reply.responseCode < 400 ? "info" : "warn", "message_done", {
        via: message.via,
        session: context.sessionId,
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
        ms: Date.now() - message.started,
      });
      return { reply, context };
    },
  };
}
