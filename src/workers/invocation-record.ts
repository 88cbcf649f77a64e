/**
 * One invocation as the host sees it: what it runs with (definition, message, handlers) and what
 * the worker did through the host (forwards, replies, host-side failures), then the
 * InvocationResult made from that and the entry worker's report.
 *
 * Promises:
 * - The record of forwards and replies is the host's own, not the worker's account of itself: a
 *   worker cannot claim a forward it did not make, and forwards made before a timeout are kept.
 * - Outcome precedence follows the SMTP answer it leads to: error (451) over rejected (550) over
 *   forwarded and replied (250) over dropped (250, nothing sent). "Emails sent through Workers
 *   will show up ... as dropped" (Cloudflare, Limits), so send_email alone is a drop.
 */
import { randomUUID } from "node:crypto";
import type { EntryReport } from "./host-protocol.ts";
import type { EmailInvocation, HostHandlers, InvocationResult, WorkerDefinition } from "./worker-types.ts";

type LogEntry = InvocationResult["logs"][number];

export class InvocationRecord {
  readonly id = randomUUID();
  readonly definition: WorkerDefinition;
  readonly invocation: EmailInvocation;
  readonly handlers: HostHandlers;
  readonly forwards: InvocationResult["forwards"] = [];
  #replies = 0;
  readonly #hostLogs: LogEntry[] = [];
  readonly #started = performance.now();

  constructor(definition: WorkerDefinition, invocation: EmailInvocation, handlers: HostHandlers) {
    this.definition = definition;
    this.invocation = invocation;
    this.handlers = handlers;
  }

  get replied(): boolean {
    return this.#replies > 0;
  }

  recordReply(): void {
    this.#replies++;
  }

  /** A line the host adds to the worker's log (e.g. a header forward() dropped). */
  note(level: string, message: string): void {
    this.#hostLogs.push({ level, message: `mailroute: ${message}`, at: Date.now() });
  }

  finish(report: EntryReport): InvocationResult {
    const base = { ...this.#base(report.logs, report.logsDropped), ...handlerResults(report) };
    if (report.error !== undefined) return { ...base, outcome: "error", error: report.error };
    if (report.rejectReason !== undefined) return { ...base, outcome: "rejected", rejectReason: report.rejectReason };
    if (this.forwards.some((forward) => forward.error === undefined)) return { ...base, outcome: "forwarded" };
    if (this.replied) return { ...base, outcome: "replied" };
    return { ...base, outcome: "dropped" };
  }

  /** The worker never answered: it ran out of time, or its runtime went away. */
  fail(outcome: "error" | "timeout", error: string): InvocationResult {
    return { ...this.#base([], 0), outcome, error };
  }

  #base(workerLogs: readonly LogEntry[], dropped: number): Omit<InvocationResult, "outcome"> {
    const logs = [...workerLogs, ...this.#hostLogs].sort((a, b) => a.at - b.at);
    if (dropped > 0) logs.push({ level: "warn", message: `mailroute: ${dropped} more console lines were not kept`, at: Date.now() });
    return {
      forwards: this.forwards.map((forward) => ({ ...forward })),
      logs,
      durationMs: Math.round(performance.now() - this.#started),
    };
  }
}

/** What a fetch(), queue() or probe invocation answered besides the email outcome. */
function handlerResults(report: EntryReport): Pick<InvocationResult, "response" | "queue" | "handlers"> {
  return {
    ...(report.response === undefined ? {} : { response: report.response }),
    ...(report.queue === undefined ? {} : { queue: report.queue }),
    ...(report.handlers === undefined ? {} : { handlers: report.handlers }),
  };
}
