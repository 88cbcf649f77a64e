/**
 * A message handed in over HTTP for the Email Worker routed at `to` (the /cdn-cgi/handler/email
 * development endpoint, as `wrangler dev` offers): planned and processed by the same mail core
 * as SMTP mail, minus inbound authentication (the caller holds the admin token) and events.
 *
 * Promises: only worker plans run here — an address routed to a forward, drop or reject rule
 * is refused with the reason, so the endpoint can never be used to relay mail; a refusal is the
 * RCPT TO reply a sender would get; the spool is disposed whatever happens.
 */
import { MessageSpool } from "../delivery/message-spool.ts";
import type { MailCore } from "./mail-core.ts";
import { replies } from "./reply-catalogue.ts";
import { SmtpReply } from "./smtp-reply.ts";
import type { WorkerReport } from "./worker-step.ts";

export interface HandInOptions {
  maxMessageSize: number;
  spoolDir?: string;
  now?: () => Date;
}

export type HandInResult = { reply: string; worker: WorkerReport | null } | { refused: string };

export function createWorkerHandIn(core: MailCore, options: HandInOptions): (input: { from: string; to: string; raw: Buffer }) => Promise<HandInResult> {
  const now = options.now ?? (() => new Date());
  let counter = 0;
  return async function handInToWorker(input) {
    const sessionId = `http-${(++counter).toString(36)}`;
    // the null sender: an SRS address never routes to a worker, and a worker plan ignores it
    const planned = core.plan(input.to, "");
    if (!planned.ok) return { refused: planned.reply.line };
    if (planned.plan.kind !== "worker") return { refused: `${input.to} is routed by a rule of action "${planned.plan.kind}", not to an Email Worker` };
    const spool = new MessageSpool({ maxSize: options.maxMessageSize, spoolDir: options.spoolDir });
    try {
      await spool.write(input.raw);
      if (spool.exceeded) return { refused: new SmtpReply(replies.MESSAGE_TOO_BIG, { limit: options.maxMessageSize }).line };
      const { reply, context } = await core.receive({
        via: "hand-in",
        started: Date.now(),
        sessionId,
        queueId: `${sessionId}.1`,
        clientIp: "127.0.0.1",
        clientHelo: "cdn-cgi.handler",
        mailFrom: input.from,
        recipients: [planned.recipient],
        secure: false,
        smtpUtf8: false,
        trusted: true,
        plan: planned.plan,
        spool,
        receivedAt: now(),
      });
      return { reply: reply.line, worker: context.worker };
    } finally {
      await spool.dispose();
    }
  };
}
