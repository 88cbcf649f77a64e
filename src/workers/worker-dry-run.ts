/**
 * Runs a deployed worker's email() on a message without delivering anything: what
 * `mailroute worker test <name> --eml message.eml` prints. The worker runs on the real runtime
 * (workerd, its deployed modules and bindings); its forward(), reply() and send_email calls,
 * Analytics Engine points and queue messages are recorded and answered as if they succeeded.
 *
 * Promises: no message leaves the machine and no queue or dataset is written; KV, D1 and R2 are
 * the deployed worker's own (reads see real data, and writes happen, as with `wrangler dev
 * --remote`); the SMTP answer shown is the one the server would give, from the reply catalogue.
 */
import { randomBytes } from "node:crypto";
import { replies } from "../mail/reply-catalogue.ts";
import { SmtpReply } from "../mail/smtp-reply.ts";
import { stripReplyCode } from "../mail/worker-step.ts";
import { WorkerRuntime } from "./worker-runtime.ts";
import type { R2Buckets } from "./r2-types.ts";
import type { HostHandlers, InvocationResult, KvStore, WorkerDefinition } from "./worker-types.ts";

export interface DryRunReport {
  worker: string;
  from: string;
  to: string;
  outcome: InvocationResult["outcome"];
  /** The SMTP answer the server would give the sender. */
  answer: string;
  rejectReason?: string;
  error?: string;
  forwards: { to: string; headers: [string, string][] }[];
  replies: { from: string; to: string; bytes: number; subject: string | null }[];
  sent: { binding: string; from: string; to: string; bytes: number; subject: string | null }[];
  dataPoints: { dataset: string; indexes: string[]; blobs: (string | null)[]; doubles: number[] }[];
  queued: { queue: string; body: string; contentType: string }[];
  logs: InvocationResult["logs"];
  durationMs: number;
}

export async function dryRunWorker(definition: WorkerDefinition, message: { from: string; to: string; raw: Buffer }, options: { kv: KvStore; r2?: R2Buckets | undefined; deadlineMs?: number; hostname?: string }): Promise<DryRunReport> {
  const report: DryRunReport = {
    worker: definition.name,
    from: message.from,
    to: message.to,
    outcome: "dropped",
    answer: "",
    forwards: [],
    replies: [],
    sent: [],
    dataPoints: [],
    queued: [],
    logs: [],
    durationMs: 0,
  };
  let sequence = 0;
  const messageId = () => `<dry-run-${++sequence}@mailroute.invalid>`;
  const handlers: HostHandlers = {
    async forward(rcptTo, extraHeaders) {
      report.forwards.push({ to: rcptTo, headers: extraHeaders });
      return { messageId: messageId() };
    },
    async reply(raw, from, to) {
      report.replies.push({ from, to, bytes: raw.length, subject: subjectOf(raw) });
      return { messageId: messageId() };
    },
    async sendEmail(binding, from, to, raw) {
      report.sent.push({ binding, from, to, bytes: raw.length, subject: subjectOf(raw) });
      return { messageId: messageId() };
    },
    kv: options.kv,
    platform: {
      async writeDataPoint(dataset, point) {
        report.dataPoints.push({ dataset, ...point });
      },
      async sendToQueue(queue, messages) {
        for (const queued of messages) report.queued.push({ queue, body: queued.body, contentType: queued.contentType });
      },
    },
  };
  const r2 = options.r2;
  const runtime = new WorkerRuntime({ memoryLimitMb: null, ...(r2 === undefined ? {} : { r2: () => r2 }) });
  try {
    const result = await runtime.invoke(definition, message, handlers, { deadlineMs: options.deadlineMs });
    report.outcome = result.outcome;
    if (result.rejectReason !== undefined) report.rejectReason = result.rejectReason;
    if (result.error !== undefined) report.error = result.error;
    report.logs = result.logs;
    report.durationMs = result.durationMs;
    report.answer = answerFor(result, options.hostname ?? "mailroute").line;
    return report;
  } finally {
    await runtime.dispose();
  }
}

// the server's answer for each outcome (worker-step.ts): a failure gives the sender only an
// incident id, never the worker's error (the report shows that error beside it)
function answerFor(result: InvocationResult, hop: string): SmtpReply {
  switch (result.outcome) {
    case "forwarded":
      return new SmtpReply(replies.ACCEPTED, { id: "(test)", count: result.forwards.filter((forward) => forward.error === undefined).length });
    case "replied":
      return new SmtpReply(replies.ACCEPTED_ANSWERED, { id: "(test)" });
    case "dropped":
      return new SmtpReply(replies.ACCEPTED_DROPPED, { id: "(test)" });
    case "rejected":
      return new SmtpReply(replies.WORKER_REJECT, { reason: stripReplyCode(result.rejectReason ?? "rejected by the Email Worker") });
    case "error":
      return new SmtpReply(replies.WORKER_FAILED, { hop, incident: randomBytes(6).toString("hex") });
    case "timeout":
      return new SmtpReply(replies.WORKER_TIMED_OUT, { hop, incident: randomBytes(6).toString("hex") });
  }
}

function subjectOf(raw: Buffer): string | null {
  const head = raw.subarray(0, 64 * 1024).toString("utf8").split(/\r?\n\r?\n/)[0] ?? "";
  const match = /^subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(head);
  return match === null ? null : match[1]!.replace(/\r?\n[ \t]+/g, " ").trim();
}
