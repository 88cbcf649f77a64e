/**
 * The last step of a worker plan: run the zone account's Email Worker on workerd and wire its
 * forward()/reply()/send_email calls to the same path as a rule's forward — the one
 * prepare-and-sign stage (prepare-copy.ts: SRS envelope, DKIM/ARC, ledger fingerprint) and the
 * same Dispatcher — one destination per call, no failover.
 *
 * Promises (issue 4, Cloudflare's runtime API):
 * - forward() refusals use Cloudflare's exact texts, because real workers branch on them:
 *   "destination address is invalid", "destination address not verified", "message already
 *   forwarded to this destination", "cannot forward email to same worker", and
 *   "could not send email: Unknown error: transient|permanent error (<code>)";
 * - the SMTP answer follows the invocation: forwarded → 250 with the count; answered only with
 *   reply() → 250 "answered by the Email Worker"; setReject(reason) → 550 5.7.1 reason (an SMTP
 *   code at its start is not doubled); threw or timed out → 451 4.3.0 so the sender retries;
 *   finished without acting → accepted and dropped.
 *
 * Promises (issue 8, memory and fairness):
 * - The message is read into memory only once the invocation is admitted (InvocationLimiter:
 *   slots per worker, per account and overall, and a byte budget), and then exactly once: a
 *   backlog of worker mail waits in its spools (on disk past 256 KiB), not in buffers.
 * - The whole step, waiting for admission included, ends within the gateway's deadline; the
 *   wait takes at most MAX_WAIT_SHARE of it, and no admission in that time → 451 4.3.2.
 *
 * Promises (issue 9, privacy): the sender never sees the worker's own words when it failed (an
 * exception may carry API keys or private addresses), only a generic reason and an incident id;
 * the details, under the same id, go to the worker's log (`worker tail`) and the activity log.
 */
import { createHash, randomBytes } from "node:crypto";
import { parseDestinationAddress, toAsciiAddress } from "../routing/email-address.ts";
import { resolveRecipient } from "../routing/resolve-recipient.ts";
import { verifiedFor, type RoutingTable } from "../routing/routing-table.ts";
import type { InvocationLease, InvocationTicket } from "../workers/invocation-limiter.ts";
import { WorkerCallError, type HostHandlers, type InvocationResult, type KvStore, type PlatformHandlers, type WorkerDefinition } from "../workers/worker-types.ts";
import type { MailDependencies } from "./mail-dependencies.ts";
import type { MessageContext } from "./message-context.ts";
import { bufferBody, prepareCopy } from "./prepare-copy.ts";
import { dispatcherFor } from "./dispatcher.ts";
import { copyOrigin } from "./forward-steps.ts";
import { replies } from "./reply-catalogue.ts";
import { SmtpReply } from "./smtp-reply.ts";

export interface WorkerGateway {
  account: string;
  /** The most one worker step may take, waiting for admission included (--worker-deadline). */
  deadlineMs: number;
  load(account: string, script: string): Promise<WorkerDefinition | null>;
  /** Admission to run one invocation holding `ticket.bytes` of message; null when none came within `waitMs`. */
  admit(ticket: InvocationTicket, waitMs: number): Promise<InvocationLease | null>;
  invoke(definition: WorkerDefinition, invocation: { from: string; to: string; raw: Buffer }, handlers: HostHandlers, options: { deadlineMs: number }): Promise<InvocationResult>;
  kv(account: string): KvStore;
  /** Analytics Engine, Queues, Workers AI (issue 9); absent: those bindings fail when used. */
  platform?(account: string): PlatformHandlers;
  recordLogs(account: string, script: string, logs: InvocationResult["logs"]): Promise<void>;
  routing(): RoutingTable;
}

/** What a worker did, for the event log. */
export interface WorkerReport {
  script: string;
  outcome: InvocationResult["outcome"] | "not-deployed" | "busy";
  rejectReason?: string;
  error?: string;
  /** The id the sender was given for a failure (451), also on the worker's log line about it. */
  incident?: string;
  forwards: InvocationResult["forwards"];
  logs: InvocationResult["logs"];
  durationMs: number;
}

const HEADER_NAME = /^[!-9;-~]+$/;
/** Waiting for admission may take at most this share of the deadline; the worker gets the rest. */
export const MAX_WAIT_SHARE = 0.5;

/** The message as the worker sees it, our trace headers first, read into one buffer of its exact size. */
async function materialise(prefix: Buffer, spool: MessageContext["spool"]): Promise<Buffer> {
  const raw = Buffer.allocUnsafe(prefix.length + spool.size);
  let offset = prefix.copy(raw, 0);
  for await (const chunk of spool.createReadStream()) offset += (chunk as Buffer).copy(raw, offset);
  return offset === raw.length ? raw : raw.subarray(0, offset);
}

function newIncident(): string {
  return randomBytes(6).toString("hex");
}

type WorkerDependencies = MailDependencies & { workers: WorkerGateway };

export async function runWorker(context: MessageContext, deps: WorkerDependencies, script: string): Promise<{ reply: SmtpReply; report: WorkerReport }> {
  const started = performance.now();
  const gateway = deps.workers;
  // The zone's account runs the worker and owns its KV and verified destinations.
  const account = (context.plan.zone === null ? undefined : gateway.routing().zones.get(context.plan.zone)?.account) ?? gateway.account;
  const definition = await gateway.load(account, script);
  if (definition === null) {
    return {
      reply: new SmtpReply(replies.WORKER_NOT_DEPLOYED, { address: context.recipients[0] ?? "", script }),
      report: { script, outcome: "not-deployed", forwards: [], logs: [], durationMs: 0 },
    };
  }
  const prefix = Buffer.concat(context.prefix);
  // Admission before the message is read: a backlog of worker mail waits in its spools.
  const waitMs = Math.max(0, gateway.deadlineMs * MAX_WAIT_SHARE - (performance.now() - started));
  const lease = await gateway.admit({ account: definition.account, worker: definition.name, bytes: prefix.length + context.spool.size }, waitMs);
  if (lease === null) {
    const incident = newIncident();
    const logs = [{ level: "error", message: `mailroute: incident ${incident}: not run: no capacity for this worker within ${Math.round(waitMs)} ms (its share of concurrent invocations or of message memory was in use); the sender was asked to retry`, at: Date.now() }];
    await gateway.recordLogs(account, script, logs).catch(() => undefined);
    return {
      reply: new SmtpReply(replies.WORKER_BUSY, { hop: deps.hostname, incident }),
      report: { script, outcome: "busy", error: "no capacity within the wait", incident, forwards: [], logs, durationMs: Math.round(performance.now() - started) },
    };
  }
  try {
    return await invokeAdmitted(context, deps, script, definition, await materialise(prefix, context.spool), Math.max(1, gateway.deadlineMs - (performance.now() - started)));
  } finally {
    lease.release();
  }
}

async function invokeAdmitted(
  context: MessageContext,
  deps: WorkerDependencies,
  script: string,
  definition: WorkerDefinition,
  raw: Buffer,
  deadlineMs: number,
): Promise<{ reply: SmtpReply; report: WorkerReport }> {
  const account = definition.account;
  const gateway = deps.workers;
  const rcpt = context.recipients[0] ?? "";
  const forwarded = new Set<string>();
  const routingDomain = context.plan.zone ?? deps.hostname;

  async function deliverCopy(to: string, extraHeaders: Buffer, envelopeFrom: string, body: Buffer, kind: string): Promise<{ messageId: string }> {
    const forward = kind === "forward";
    const prepared = await prepareCopy(
      {
        chains: [[to]],
        envelopeFrom,
        headers: extraHeaders,
        body: bufferBody(body),
        routingDomain,
        sign: context.plan.policy.signOutbound,
        // only a forward carries the inbound chain on; a reply or send_email message starts its own
        seal: forward ? { arc: (context.auth?.arcForSealing as never) ?? null, authenticationResults: context.auth?.authenticationResults ?? null } : null,
        // A forward is the incoming message (a sender's retry must not duplicate it); a reply or a
        // send_email message is composed by the worker, so its own bytes identify it.
        identity: { messageId: `${context.headers.messageId ?? ""}|${kind}`, mailFrom: envelopeFrom, recipients: [to], contentSha256: forward ? context.spool.sha256 : createHash("sha256").update(body).digest("hex") },
      },
      deps.sign,
    );
    // the worker's own forward is the received message: its sender hears of a final failure; a
    // reply or a send_email message is ours, and a DSN for it would go to our own zone
    const origin = copyOrigin(context, forward ? context.mailFrom : "");
    // the sender waits for the worker's answer: what only records the outcome follows it
    const afterReply = deps.afterReply === undefined ? {} : { afterReply: deps.afterReply };
    const outcome = await dispatcherFor(context.plan.policy.deliveryMode, { inSession: deps.dispatcher, queue: deps.queue }).dispatch({ ...prepared.request, origin, ...afterReply });
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
      if (!verifiedFor(table, account).has(parsed.key)) throw new WorkerCallError("destination address not verified");
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
      if (!verifiedFor(gateway.routing(), account).has(parsed.key)) throw new WorkerCallError("destination address not verified");
      return deliverCopy(to, Buffer.alloc(0), from, message, `send:${to}`);
    },
    kv: gateway.kv(account),
    platform: gateway.platform?.(account),
  };

  const result = await gateway.invoke(definition, { from: context.mailFrom, to: rcpt, raw }, handlers, { deadlineMs });
  const failed = result.outcome === "error" || result.outcome === "timeout";
  const incident = failed ? newIncident() : undefined;
  const logs = failed
    ? [...result.logs, { level: "error", message: `mailroute: incident ${incident}: ${result.outcome === "timeout" ? "ran out of time" : "failed"}: ${result.error ?? "the worker failed"}; the sender was asked to retry`, at: Date.now() }]
    : result.logs;
  await gateway.recordLogs(account, script, logs).catch(() => undefined);
  const report: WorkerReport = { script, outcome: result.outcome, rejectReason: result.rejectReason, error: result.error, incident, forwards: result.forwards, logs, durationMs: result.durationMs };
  switch (result.outcome) {
    case "forwarded":
      return { reply: new SmtpReply(replies.ACCEPTED, { id: context.queueId, count: result.forwards.filter((f) => f.error === undefined).length }), report };
    case "replied":
      return { reply: new SmtpReply(replies.ACCEPTED_ANSWERED, { id: context.queueId }), report };
    case "dropped":
      return { reply: new SmtpReply(replies.ACCEPTED_DROPPED, { id: context.queueId }), report };
    case "rejected":
      return { reply: new SmtpReply(replies.WORKER_REJECT, { reason: stripReplyCode(result.rejectReason ?? "rejected by the Email Worker") }), report };
    case "error":
      return { reply: new SmtpReply(replies.WORKER_FAILED, { hop: deps.hostname, incident }), report };
    case "timeout":
      return { reply: new SmtpReply(replies.WORKER_TIMED_OUT, { hop: deps.hostname, incident }), report };
  }
}

/** "550 5.7.1 go away" → "go away": the reply already has our code (no "550 5.7.1 550 5.7.1"). */
export function stripReplyCode(reason: string): string {
  return reason.replace(/^\s*[245]\d{2}(?:[ -]+[245]\.\d{1,3}\.\d{1,3})?[ -]+/, "").trim() || "rejected by the Email Worker";
}
