/**
 * What happens to a message once DATA is in, as an explicit list of steps:
 *
 *   authenticate → enforce policy → score → add trace headers → sign and seal → deliver
 *
 * Each step reads and extends one MessageContext and may end the pipeline with a reply. The
 * only reply that can say 250 is the last step's, and only once every destination that must
 * have the message accepted it (DESIGN §4). Steps never rewrite the body or existing headers:
 * everything we add is prepended (RFC 5321 §4.4 trace fields, RFC 8601, RFC 6376, RFC 8617).
 */
import type { InboundAuthResult } from "../inbound/authenticate-message.ts";
import { decideAuthPolicy } from "../inbound/auth-policy.ts";
import type { DnsRecordResolver } from "../inbound/dns-txt-resolver.ts";
import { checkReverseDns, type ReverseDnsResult } from "../inbound/reverse-dns.ts";
import { scoreMessage, spamHeaders, type SpamScore } from "../inbound/spam-score.ts";
import type { AuthenticateMessageInput } from "../inbound/authenticate-message.ts";
import { readHeaderFields, type HeaderFields } from "../delivery/header-block.ts";
import { messageFingerprint } from "../delivery/message-fingerprint.ts";
import type { MessageSpool } from "../delivery/message-spool.ts";
import type { MessageSigner, SignedHeaders } from "../delivery/message-signer.ts";
import { heldChain, relayMessage, representativeFailure, type RelayDependencies, type RelayOutcome } from "../delivery/relay-message.ts";
import type { SrsRewriter } from "../delivery/srs-rewriter.ts";
import { receivedHeader } from "../delivery/trace-header.ts";
import type { DestinationChains } from "../routing/destination-expression.ts";
import { toAsciiAddress } from "../routing/email-address.ts";
import type { ZonePolicy } from "../routing/routing-table.ts";
import { replies } from "./reply-catalogue.ts";
import { runWorker, type WorkerGateway, type WorkerReport } from "./worker-step.ts";
import { SmtpReply } from "./smtp-reply.ts";
import { relayDurationSeconds, workerDurationSeconds, workerInvocationsTotal } from "../analytics/metrics.ts";

export interface Plan {
  key: string;
  kind: "forward" | "drop" | "srs-return" | "worker";
  /** The Email Worker's script name (kind "worker"). */
  script?: string;
  chains: DestinationChains;
  /** The zone the recipients belong to (null for SRS returns: signed for our hostname). */
  zone: string | null;
  policy: Readonly<ZonePolicy>;
}

export interface MessageContext {
  readonly sessionId: string;
  readonly queueId: string;
  readonly clientIp: string;
  readonly clientHelo: string;
  readonly mailFrom: string;
  readonly recipients: readonly string[];
  readonly secure: boolean;
  readonly smtpUtf8: boolean;
  /** Client in a trusted network: authenticated and scored, never refused for it. */
  readonly trusted: boolean;
  readonly plan: Plan;
  readonly spool: MessageSpool;
  readonly receivedAt: Date;
  headers: HeaderFields;
  auth: InboundAuthResult | null;
  authMark: string | null;
  spam: SpamScore | null;
  /** The client's forward-confirmed reverse DNS name, for the Received header. */
  reverseName: string | null;
  /** Reverse DNS, started with the pipeline so its DNS waits overlap authentication's (issue 11). */
  reverseLookup: Promise<ReverseDnsResult> | null;
  /** Header lines to prepend, top first. */
  prefix: Buffer[];
  signed: SignedHeaders | null;
  upstreamFrom: string;
  relay: RelayOutcome | null;
  worker: WorkerReport | null;
}

/** The facts known when DATA ends; everything the steps fill in starts empty. */
export type MessageFacts = Pick<
  MessageContext,
  "sessionId" | "queueId" | "clientIp" | "clientHelo" | "mailFrom" | "recipients" | "secure" | "smtpUtf8" | "trusted" | "plan" | "spool" | "receivedAt"
>;

export function newMessageContext(facts: MessageFacts): MessageContext {
  return {
    ...facts,
    headers: { messageId: null, subject: null, count: 0 },
    auth: null,
    authMark: null,
    spam: null,
    reverseName: null,
    reverseLookup: null,
    prefix: [],
    signed: null,
    upstreamFrom: "",
    relay: null,
    worker: null,
  };
}

export interface PipelineDependencies {
  hostname: string;
  authenticate: ((input: AuthenticateMessageInput) => Promise<InboundAuthResult>) | null;
  resolver: DnsRecordResolver;
  authTimeoutMs: number;
  sign: MessageSigner | null;
  srs: SrsRewriter;
  relay: RelayDependencies;
  /** Email Workers; null when the worker runtime is not available. */
  workers: WorkerGateway | null;
}

export type PipelineStep = (context: MessageContext, deps: PipelineDependencies) => Promise<SmtpReply | null>;

async function authenticate(context: MessageContext, deps: PipelineDependencies): Promise<SmtpReply | null> {
  if (deps.authenticate === null) return null;
  context.auth = await deps.authenticate({
    message: context.spool.createReadStream(),
    clientIp: context.clientIp,
    helo: context.clientHelo,
    mailFrom: context.mailFrom,
    hostname: deps.hostname,
    resolver: deps.resolver,
    timeoutMs: deps.authTimeoutMs,
  });
  return null;
}

async function enforcePolicy(context: MessageContext, deps: PipelineDependencies): Promise<SmtpReply | null> {
  if (context.auth === null) return null;
  const policy = context.plan.policy;
  const decision = decideAuthPolicy(context.auth, {
    enforceDmarc: policy.enforceDmarc,
    // SRS returns too (issue 8): our HMAC proves the address is ours, not that the bounce is
    // genuine; waiving the check made every valid SRS address a relay for unauthenticated mail.
    requireSpfOrDkim: policy.requireAuth,
    quarantineAction: policy.rejectQuarantine ? "reject" : "accept",
  });
  if (decision.verdict === "accept") return null;
  if (decision.verdict === "accept-marked" || context.trusted) {
    context.authMark = decision.verdict === "accept-marked" ? decision.reason : `trusted-client:${decision.reason}`;
    return null;
  }
  if (decision.verdict === "tempfail") return new SmtpReply(replies.AUTH_TEMPFAIL, { hop: deps.hostname, ...decision.values });
  return new SmtpReply(replies[decision.reply], decision.values);
}

async function score(context: MessageContext, deps: PipelineDependencies): Promise<SmtpReply | null> {
  const reverse = await (context.reverseLookup ?? checkReverseDns(context.clientIp, deps.resolver));
  if (reverse.verdict === "confirmed") context.reverseName = reverse.name;
  context.spam = scoreMessage({
    auth: context.auth,
    // A listed client is refused at connect; reaching DATA means it was not listed.
    dnsblListed: false,
    reverseDns: reverse.verdict,
    head: context.spool.head(),
    receivedAt: context.receivedAt,
  });
  const threshold = context.plan.policy.spamThreshold;
  if (threshold !== null && context.spam.score > threshold && !context.trusted) {
    return new SmtpReply(replies.SPAM_REJECT, { score: context.spam.score, threshold });
  }
  return null;
}

async function addTraceHeaders(context: MessageContext, deps: PipelineDependencies): Promise<SmtpReply | null> {
  const lines: string[] = [];
  if (context.auth !== null) lines.push(`Authentication-Results: ${context.auth.authenticationResults}`);
  if (context.spam !== null) lines.push(...spamHeaders(context.spam));
  if (context.authMark !== null) lines.push(`X-Mailroute-Auth-Warning: ${context.authMark.replace(/[^\x21-\x7e]/g, "")}`);
  context.prefix.push(
    receivedHeader({
      clientHelo: context.clientHelo,
      clientAddress: context.clientIp,
      clientHostname: context.reverseName,
      hostname: deps.hostname,
      secure: context.secure,
      smtpUtf8: context.smtpUtf8,
      queueId: context.queueId,
      recipient: context.recipients.length === 1 ? context.recipients[0]! : null,
      date: context.receivedAt,
    }),
    Buffer.from(lines.map((line) => `${line}\r\n`).join("")),
  );
  return null;
}

async function signAndSeal(context: MessageContext, deps: PipelineDependencies): Promise<SmtpReply | null> {
  // A worker's forwards are signed one by one, with the headers the worker added.
  if (deps.sign === null || context.plan.kind === "drop" || context.plan.kind === "worker") return null;
  // the zone opted out (migration 0006): its mail goes to the operator's own server
  if (!context.plan.policy.signOutbound) return null;
  const prefix = Buffer.concat(context.prefix);
  context.signed = await deps.sign({
    message: context.spool.createReadStream(prefix),
    routingDomain: context.plan.zone ?? deps.hostname,
    arc: context.auth === null ? null : (context.auth.arcForSealing as Parameters<MessageSigner>[0]["arc"]),
    authenticationResults: context.auth?.authenticationResults ?? null,
  });
  if (context.signed.headers.length > 0) context.prefix.unshift(context.signed.headers);
  return null;
}

async function deliver(context: MessageContext, deps: PipelineDependencies): Promise<SmtpReply> {
  if (context.plan.kind === "drop") return new SmtpReply(replies.ACCEPTED_DROPPED, { id: context.queueId });
  // SRS (DESIGN §4): our envelope sender, so SPF passes at the destination and bounces come back to us.
  context.upstreamFrom = context.plan.kind === "srs-return" ? toAsciiAddress(context.mailFrom) : deps.srs.forward(toAsciiAddress(context.mailFrom));
  const prefix = Buffer.concat(context.prefix);
  const fingerprint = messageFingerprint({ messageId: context.headers.messageId, mailFrom: context.mailFrom, recipients: context.recipients, contentSha256: context.spool.sha256 });
  const endRelayTimer = relayDurationSeconds.startTimer();
  context.relay = await relayMessage(
    { chains: context.plan.chains, mailFrom: context.upstreamFrom, fingerprint, size: context.spool.size + prefix.length, message: () => context.spool.createReadStream(prefix) },
    deps.relay,
  );
  endRelayTimer();
  return replyForRelay(context.relay, context.queueId, deps.hostname);
}

/** The pipeline, in order. The last step always answers. */
export const MESSAGE_PIPELINE: readonly PipelineStep[] = Object.freeze([authenticate, enforcePolicy, score, addTraceHeaders, signAndSeal]);

export async function runMessagePipeline(context: MessageContext, deps: PipelineDependencies): Promise<SmtpReply> {
  context.headers = readHeaderFields(context.spool.head());
  // independent of authentication and both wait on DNS: started now, awaited by score().
  // checkReverseDns never rejects; the catch only keeps an early policy refusal from
  // leaving a rejection nobody handles
  context.reverseLookup ??= checkReverseDns(context.clientIp, deps.resolver).catch((): ReverseDnsResult => ({ verdict: "unknown", name: null }));
  for (const step of MESSAGE_PIPELINE) {
    const reply = await step(context, deps);
    if (reply !== null) return reply;
  }
  if (context.plan.kind === "worker") {
    if (deps.workers === null) return new SmtpReply(replies.WORKER_UNAVAILABLE, { address: context.recipients[0] ?? "", script: context.plan.script ?? "" });
    const { reply, report } = await runWorker(context, { ...deps, workers: deps.workers }, context.plan.script ?? "");
    workerInvocationsTotal.inc({ outcome: report.outcome });
    if (report.outcome !== "not-deployed" && report.outcome !== "busy") workerDurationSeconds.observe(report.durationMs / 1000);
    context.worker = report;
    return reply;
  }
  return deliver(context, deps);
}

export function replyForRelay(outcome: RelayOutcome, queueId: string, hostname: string): SmtpReply {
  const delivered = outcome.chains.filter((chain) => chain.status === "delivered").length;
  switch (outcome.status) {
    case "delivered":
      return new SmtpReply(replies.ACCEPTED, { id: queueId, count: delivered });
    case "partial":
      return new SmtpReply(replies.ACCEPTED_PARTIAL, { id: queueId, count: delivered, failed: outcome.chains.length - delivered });
    case "temporary":
    case "permanent": {
      const held = outcome.status === "temporary" ? heldChain(outcome) : null;
      if (held !== null) return new SmtpReply(held.held === "in-flight" ? replies.FORWARDING_HELD : replies.LOCAL_ERROR, { hop: hostname });
      const klass = outcome.status === "temporary" ? 4 : 5;
      const failure = representativeFailure(outcome, outcome.status);
      const template = klass === 4 ? replies.UPSTREAM_TEMPORARY : replies.UPSTREAM_PERMANENT;
      if (failure === null) return new SmtpReply(template, { hop: hostname, upstream: "no answer" });
      const upstream = redactAddress(failure.upstream === null ? failure.reply : `${failure.upstream} said: ${failure.reply}`, failure.destination);
      return new SmtpReply(template, { hop: hostname, upstream }, { enhanced: enhancedOf(failure.reply, klass) ?? template.enhanced });
    }
  }
}

/** Upstreams often quote the recipient ("<bob@gmail.com>: user unknown"); that is the private address. */
function redactAddress(text: string, address: string): string {
  if (address === "") return text;
  return text.replace(new RegExp(address.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gi"), "(destination)");
}

function enhancedOf(reply: string, klass: 4 | 5): string | null {
  const match = /^(?:\d{3}[ -])?([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(reply.trim());
  if (match === null || Number(match[1]) !== klass) return null;
  return `${match[1]}.${match[2]}.${match[3]}`;
}
