/**
 * The pipeline step for a recipient routed to an Email Worker: run the account's worker on
 * workerd and wire its forward()/reply()/send_email calls to the same delivery path as a static
 * rule (SRS, DKIM/ARC, delivery ledger, failover-free single destination per call).
 *
 * Promises (issue 4, Cloudflare's runtime API):
 * - forward() refusals use Cloudflare's exact texts, because real workers branch on them:
 *   "destination address is invalid", "destination address not verified", "message already
 *   forwarded to this destination", "cannot forward email to same worker", and
 *   "could not send email: Unknown error: transient|permanent error (<code>)";
 * - the SMTP answer follows the invocation: forwarded or replied → 250; setReject(reason) →
 *   550 5.7.1 reason (an SMTP code at its start is not doubled); threw or timed out → 451 4.3.0
 *   so the sender retries; finished without acting → accepted and dropped.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { messageFingerprint } from "../delivery/message-fingerprint.ts";
import { relayMessage } from "../delivery/relay-message.ts";
import type { MessageSigner } from "../delivery/message-signer.ts";
import { parseDestinationAddress, toAsciiAddress } from "../routing/email-address.ts";
import { resolveRecipient } from "../routing/resolve-recipient.ts";
import type { RoutingTable } from "../routing/routing-table.ts";
import { WorkerCallError, type HostHandlers, type InvocationResult, type KvStore, type PlatformHandlers, type WorkerDefinition } from "../workers/worker-types.ts";
import type { MessageContext, PipelineDependencies } from "./message-pipeline.ts";
import { replies } from "./reply-catalogue.ts";
import { SmtpReply } from "./smtp-reply.ts";

export interface WorkerGateway {
  load(account: string, script: string): Promise<WorkerDefinition | null>;
  invoke(definition: WorkerDefinition, invocation: { from: string; to: string; raw: Buffer }, handlers: HostHandlers): Promise<InvocationResult>;
  kv(account: string): KvStore;
  /** Analytics Engine, Queues, Workers AI (issue 9); absent: those bindings fail when used. */
  platform?(account: string): PlatformHandlers;
  recordLogs(account: string, script: string, logs: InvocationResult["logs"]): Promise<void>;
  routing(): RoutingTable;
  account: string;
}

/** What a worker did, for the event log. */
export interface WorkerReport {
  script: string;
  outcome: InvocationResult["outcome"] | "not-deployed";
  rejectReason?: string;
  error?: string;
  forwards: InvocationResult["forwards"];
  logs: InvocationResult["logs"];
  durationMs: number;
}

const HEADER_NAME = /^[!-9;-~]+$/;

export async function runWorker(context: MessageContext, deps: PipelineDependencies & { workers: WorkerGateway; sign: MessageSigner | null }, script: string): Promise<{ reply: SmtpReply; report: WorkerReport }> {
  const gateway = deps.workers;
  const definition = await gateway.load(gateway.account, script);
  if (definition === null) {
    return {
      reply: new SmtpReply(replies.WORKER_NOT_DEPLOYED, { address: context.recipients[0] ?? "", script }),
      report: { script, outcome: "not-deployed", forwards: [], logs: [], durationMs: 0 },
    };
  }
  const prefix = Buffer.concat(context.prefix);
  const original = await context.spool.toBuffer();
  const raw = Buffer.concat([prefix, original]);
  const rcpt = context.recipients[0] ?? "";
  const forwarded = new Set<string>();
  const routingDomain = context.plan.zone ?? deps.hostname;

  async function deliverCopy(to: string, extraHeaders: Buffer, envelopeFrom: string, body: Buffer, kind: string): Promise<{ messageId: string }> {
    const message = Buffer.concat([extraHeaders, body]);
    let signed: Buffer = Buffer.alloc(0);
    if (deps.sign !== null) {
      const result = await deps.sign({ message, routingDomain, arc: kind === "forward" ? (context.auth?.arcForSealing as never) ?? null : null, authenticationResults: kind === "forward" ? context.auth?.authenticationResults ?? null : null });
      signed = result.headers;
    }
    // A forward is the incoming message (a sender's retry must not duplicate it); a reply or a
    // send_email message is composed by the worker, so its own bytes identify it.
    const contentSha256 = kind === "forward" ? context.spool.sha256 : createHash("sha256").update(body).digest("hex");
    const fingerprint = messageFingerprint({ messageId: `${context.headers.messageId ?? ""}|${kind}`, mailFrom: envelopeFrom, recipients: [to], contentSha256 });
    const parts = [signed, message];
    const outcome = await relayMessage(
      { chains: [[to]], mailFrom: envelopeFrom, fingerprint, size: signed.length + message.length, message: () => Readable.from(parts) },
      deps.relay,
    );
    const chain = outcome.chains[0];
    if (outcome.status === "delivered") return { messageId: `<${context.queueId}.${forwarded.size}@${deps.hostname}>` };
    const attempt = chain?.attempts.at(-1);
    const code = attempt?.code ?? (outcome.status === "temporary" ? 451 : 550);
    throw new WorkerCallError(`could not send email: Unknown error: ${outcome.status === "temporary" ? "transient" : "permanent"} error (${code})`);
  }

  const handlers: HostHandlers = {
    async forward(rcptTo, extraHeaders) {
      const parsed = parseDestinationAddress(String(rcptTo));
      if (parsed === null) throw new WorkerCallError("destination address is invalid");
      const destination = `${parsed.local}@${parsed.domain}`;
      if (forwarded.has(parsed.key)) throw new WorkerCallError("message already forwarded to this destination");
      const table = gateway.routing();
      if (!table.verified.has(parsed.key)) throw new WorkerCallError("destination address not verified");
      const loop = resolveRecipient(destination, table);
      if (loop.kind === "route" && loop.action.type === "worker" && loop.action.script.toLowerCase() === script.toLowerCase()) {
        throw new WorkerCallError("cannot forward email to same worker");
      }
      for (const [name, value] of extraHeaders) {
        // The runtime already keeps only X-* headers (as Cloudflare does); this guards the
        // message itself against a malformed name or a value that would add a header line.
        if (!/^x-/i.test(name) || !HEADER_NAME.test(name) || /[\r\n]/.test(value)) throw new WorkerCallError(`invalid header: ${name}`);
      }
      forwarded.add(parsed.key);
      const headerLines = Buffer.from(extraHeaders.map(([name, value]) => `${name}: ${value}\r\n`).join(""));
      try {
        return await deliverCopy(destination, headerLines, deps.srs.forward(toAsciiAddress(context.mailFrom)), raw, "forward");
      } catch (error) {
        // A failed forward may be retried by the worker to the same destination.
        forwarded.delete(parsed.key);
        throw error;
      }
    },
    async reply(message, from, to) {
      // Cloudflare replies only to mail with valid DMARC, and only where the envelope sender is
      // vouched for (SPF pass or the DMARC-aligned From domain): otherwise a reply is a
      // reflection attack on whatever address the sender typed into MAIL FROM.
      const auth = context.auth;
      const envelopeDomain = context.mailFrom.slice(context.mailFrom.lastIndexOf("@") + 1).toLowerCase();
      const vouched = auth !== null && auth.dmarc === "pass" && (auth.spf === "pass" || envelopeDomain === (auth.headerFrom ?? "").toLowerCase());
      if (!vouched && !context.trusted) throw new WorkerCallError("Original email is not replyable");
      return deliverCopy(to, Buffer.alloc(0), from, message, "reply");
    },
    async sendEmail(_binding, from, to, message) {
      // As on Cloudflare, a worker sends only as a domain routed here: never as someone else's.
      const fromDomain = parseDestinationAddress(from)?.domain;
      if (fromDomain === undefined || !gateway.routing().zones.has(fromDomain)) throw new WorkerCallError(`sender address ${from} is not on a domain routed here`);
      const parsed = parseDestinationAddress(to);
      if (parsed === null) throw new WorkerCallError("destination address is invalid");
      if (!gateway.routing().verified.has(parsed.key)) throw new WorkerCallError("destination address not verified");
      return deliverCopy(to, Buffer.alloc(0), from, message, `send:${to}`);
    },
    kv: gateway.kv(gateway.account),
    platform: gateway.platform?.(gateway.account),
  };

  const result = await gateway.invoke(definition, { from: context.mailFrom, to: rcpt, raw }, handlers);
  await gateway.recordLogs(gateway.account, script, result.logs).catch(() => undefined);
  const report: WorkerReport = { script, outcome: result.outcome, rejectReason: result.rejectReason, error: result.error, forwards: result.forwards, logs: result.logs, durationMs: result.durationMs };
  switch (result.outcome) {
    case "forwarded":
    case "replied":
      return { reply: new SmtpReply(replies.ACCEPTED, { id: context.queueId, count: result.forwards.filter((f) => f.error === undefined).length }), report };
    case "dropped":
      return { reply: new SmtpReply(replies.ACCEPTED_DROPPED, { id: context.queueId }), report };
    case "rejected":
      return { reply: new SmtpReply(replies.WORKER_REJECT, { reason: stripReplyCode(result.rejectReason ?? "rejected by the Email Worker") }), report };
    case "error":
    case "timeout":
      return { reply: new SmtpReply(replies.WORKER_FAILED, { hop: deps.hostname, script, error: result.outcome === "timeout" ? "the worker ran out of time" : result.error ?? "the worker failed" }), report };
  }
}

/** "550 5.7.1 go away" → "go away": the reply already has our code (no "550 5.7.1 550 5.7.1"). */
export function stripReplyCode(reason: string): string {
  return reason.replace(/^\s*[245]\d{2}(?:[ -]+[245]\.\d{1,3}\.\d{1,3})?[ -]+/, "").trim() || "rejected by the Email Worker";
}
