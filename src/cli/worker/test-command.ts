/**
 * `mailroute worker test <name> --eml message.eml`: runs a deployed worker on a message and
 * prints what it did (forwards, replies, rejection, data points, queue messages, logs).
 *
 * Promises: nothing is delivered; the worker's own KV, D1 and R2 writes do happen (they are
 * its data, as in `wrangler dev`).
 */
import { readFile } from "node:fs/promises";
import { ValidationError } from "../../core/validation-error.ts";
import { CliError, usageError } from "../cli-error.ts";
import { emit, need, USAGE, withWorkerServices, type Context } from "./worker-cli-context.ts";

export async function testCommand(context: Context): Promise<void> {
  const name = need(context, 1, "worker name");
  const eml = context.values.eml as string | undefined;
  if (eml === undefined) throw usageError("--eml <file> is required: the message to run the worker on (RFC 5322, as saved by a mail client)", USAGE);
  let raw: Buffer;
  try {
    raw = await readFile(eml);
  } catch (error) {
    throw new CliError(`cannot read ${eml}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const header = (field: string) => new RegExp(`^${field}:[^\\n]*?<?([^\\s<>"]+@[^\\s<>"]+)>?\\s*$`, "im").exec(raw.subarray(0, 64 * 1024).toString("utf8").split(/\r?\n\r?\n/)[0] ?? "")?.[1];
  const from = (context.values.from as string | undefined) ?? header("from") ?? "sender@example.com";
  const to = (context.values.to as string | undefined) ?? header("to") ?? "recipient@example.com";
  await withWorkerServices(context, async (services) => {
    const definition = await services.workers.definition(name).catch((error: unknown) => {
      if (error instanceof ValidationError && error.code === "not_found") return null;
      throw error;
    });
    if (definition === null) throw new CliError(`no worker named "${name.toLowerCase()}" is deployed`, { hint: "mailroute worker list" });
    const { dryRunWorker } = await import("../../workers/worker-dry-run.ts");
    const report = await dryRunWorker(definition, { from, to, raw }, { kv: services.runtimeKv, r2: services.runtimeR2 });
    const lines = [
      `worker ${report.worker} on a message from ${from} to ${to} (${raw.length} bytes): ${report.outcome} in ${report.durationMs} ms`,
      `  the sender would hear: ${report.answer}`,
      ...report.forwards.map((forward) => `  forward → ${forward.to}${forward.headers.length === 0 ? "" : ` (${forward.headers.map(([k, v]) => `${k}: ${v}`).join("; ")})`}`),
      ...report.replies.map((reply) => `  reply → ${reply.to} from ${reply.from}${reply.subject === null ? "" : `, "${reply.subject}"`} (${reply.bytes} bytes)`),
      ...report.sent.map((sent) => `  send_email ${sent.binding} → ${sent.to} from ${sent.from}${sent.subject === null ? "" : `, "${sent.subject}"`}`),
      ...(report.rejectReason === undefined ? [] : [`  setReject: ${report.rejectReason}`]),
      ...(report.error === undefined ? [] : [`  error: ${report.error}`]),
      ...report.dataPoints.map((point) => `  writeDataPoint ${point.dataset}: ${JSON.stringify({ indexes: point.indexes, blobs: point.blobs, doubles: point.doubles })}`),
      ...report.queued.map((queued) => `  queue ${queued.queue} ← ${queued.body.slice(0, 200)}`),
      ...(report.logs.length === 0 ? [] : ["  logs:", ...report.logs.map((log) => `    ${new Date(log.at).toISOString()}  ${log.level.padEnd(5)}  ${log.message}`)]),
      "nothing was delivered (KV, D1 and R2 are the worker's own: their writes did happen)",
    ];
    emit(context, report, lines);
  });
}

