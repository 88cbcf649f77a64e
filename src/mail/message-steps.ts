/**
 * What happens to a message once its content is in: one visible step list per plan kind.
 *
 *   forward     authenticate → enforcePolicy → score → addTraceHeaders → prepareForward → dispatchForward
 *   srs-return  authenticate → enforcePolicy → score → addTraceHeaders → prepareForward → dispatchForward
 *   worker      authenticate → enforcePolicy → score → addTraceHeaders → runWorker
 *   drop        authenticate → enforcePolicy → score → acceptDropped
 *
 * Each step reads and extends one MessageContext and may end the list with a reply; the last
 * step of every list always answers. The only 250 comes from a last step, and only once every
 * destination that must have the message accepted it (DESIGN §4) — or, in queue mode, once it
 * is durably stored. Steps never rewrite the body or existing headers: everything we add is
 * prepended (RFC 5321 §4.4 trace fields, RFC 8601, RFC 6376, RFC 8617).
 */
import { workerDurationSeconds, workerInvocationsTotal } from "../analytics/metrics.ts";
import { readHeaderFields } from "../delivery/header-block.ts";
import { checkReverseDns, type ReverseDnsResult } from "../inbound/reverse-dns.ts";
import { acceptDropped, dispatchForward, prepareForward, readLedgerAhead } from "./forward-steps.ts";
import { addTraceHeaders, authenticate, enforcePolicy, score } from "./inbound-steps.ts";
import type { MailDependencies, MessageStep } from "./mail-dependencies.ts";
import type { MessageContext } from "./message-context.ts";
import { replies } from "./reply-catalogue.ts";
import type { PlanKind } from "./routing-plan.ts";
import { SmtpReply } from "./smtp-reply.ts";
import { runWorker as runWorkerStep } from "./worker-step.ts";

async function runWorker(context: MessageContext, deps: MailDependencies): Promise<SmtpReply> {
  const plan = context.plan;
  const script = plan.kind === "worker" ? plan.script : "";
  if (deps.workers === null) return new SmtpReply(replies.WORKER_UNAVAILABLE, { address: context.recipients[0] ?? "", script });
  const { reply, report } = await runWorkerStep(context, { ...deps, workers: deps.workers }, script);
  workerInvocationsTotal.inc({ outcome: report.outcome });
  if (report.outcome !== "not-deployed" && report.outcome !== "busy") workerDurationSeconds.observe(report.durationMs / 1000);
  context.worker = report;
  return reply;
}

const RECEIVED: readonly MessageStep[] = [authenticate, enforcePolicy, score];

/** The step lists, one per plan kind, in order. */
export const MESSAGE_STEPS: Readonly<Record<PlanKind, readonly MessageStep[]>> = Object.freeze({
  forward: Object.freeze([...RECEIVED, addTraceHeaders, prepareForward, dispatchForward]),
  "srs-return": Object.freeze([...RECEIVED, addTraceHeaders, prepareForward, dispatchForward]),
  worker: Object.freeze([...RECEIVED, addTraceHeaders, runWorker]),
  drop: Object.freeze([...RECEIVED, acceptDropped]),
});

export async function processMessage(context: MessageContext, deps: MailDependencies): Promise<SmtpReply> {
  context.headers = readHeaderFields(context.spool.head());
  // independent of authentication and both wait on DNS: started now, awaited by score().
  // checkReverseDns never rejects; the catch only keeps an early policy refusal from leaving
  // a rejection nobody handles
  context.reverseLookup ??= checkReverseDns(context.clientIp, deps.resolver).catch((): ReverseDnsResult => ({ verdict: "unknown", name: null }));
  // the same for the delivery ledger's read (a store round trip) that the forward's dispatch needs
  context.ledgerAhead ??= readLedgerAhead(context, deps);
  for (const step of MESSAGE_STEPS[context.plan.kind]) {
    const reply = await step(context, deps);
    if (reply !== null) return reply;
  }
  // every list ends with a step that answers; reaching here is a bug, and the sender retries
  return new SmtpReply(replies.LOCAL_ERROR, { hop: deps.hostname });
}
