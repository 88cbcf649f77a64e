/**
 * The host side of the entry worker's calls (host-protocol.ts): routes each call to the
 * invocation in flight by its id, applies the runtime's own rules, then the invocation's
 * HostHandlers, and answers in the protocol's shape.
 *
 * Promises:
 * - Every rule is enforced here, not in the entry worker (which shares an isolate with the
 *   worker's code): forward() keeps only X-* headers, reply() once and within Cloudflare's
 *   constraints, send_email within its binding's lists, KV within KV's limits and only the
 *   namespaces the worker is bound to.
 * - A WorkerCallError's text reaches the worker verbatim; any other failure reaches it as
 *   "internal error" and its real message goes to the invocation's log.
 * - A call naming no invocation in flight (finished, or another account's) is refused.
 */
import { checkReply, checkSendEmail } from "./composed-mail-rules.ts";
import { HOST_PROTOCOL, type HostOp, type HostProblem } from "./host-protocol.ts";
import type { InvocationRecord } from "./invocation-record.ts";
import { checkKvKey, resolveKvList, resolveKvPut, type KvPutRequest } from "./kv-rules.ts";
import { NO_PLATFORM_BINDINGS } from "./platform-bindings.ts";
import { WorkerCallError } from "./worker-types.ts";

const h = HOST_PROTOCOL.headers;
// RFC 5322 §3.6.8 field name; Cloudflare keeps only X-* ones (a Reply-To beside an X- header was
// measured to be dropped without an error, so dropping, not throwing, is what workers expect)
const X_HEADER = /^x-[\x21-\x39\x3b-\x7e]+$/i;
const UNSAFE_VALUE = /[\r\n\0]/;

function problem(status: number, error: string, name: HostProblem["name"] = "Error"): Response {
  return Response.json({ error, name } satisfies HostProblem, { status });
}

function decoded(request: Request, header: string): string | null {
  const value = request.headers.get(header);
  return value === null ? null : decodeURIComponent(value);
}

function namespaceOf(record: InvocationRecord, binding: unknown): string {
  const found = record.definition.kv.find((kv) => kv.binding === binding);
  if (found === undefined) throw new Error(`no KV binding ${JSON.stringify(binding)}`);
  return found.namespace;
}

async function forward(record: InvocationRecord, request: Request): Promise<Response> {
  const body = (await request.json()) as { rcptTo: string; headers: [string, string][] };
  const kept: [string, string][] = [];
  for (const [name, value] of body.headers) {
    if (X_HEADER.test(name) && !UNSAFE_VALUE.test(value)) kept.push([name, value]);
    else record.note("warn", `forward() did not add header "${name}": only X-* headers may be added`);
  }
  try {
    const { messageId } = await record.handlers.forward(body.rcptTo, kept);
    record.forwards.push({ to: body.rcptTo, messageId });
    return Response.json({ messageId });
  } catch (error) {
    record.forwards.push({ to: body.rcptTo, error: error instanceof WorkerCallError ? error.message : "internal error" });
    throw error;
  }
}

async function reply(record: InvocationRecord, request: Request): Promise<Response> {
  const from = decoded(request, h.from) ?? "";
  const to = decoded(request, h.to);
  const raw = checkReply(record.invocation, { from, to, raw: Buffer.from(await request.arrayBuffer()) }, record.replied);
  const { messageId } = await record.handlers.reply(raw, from, to ?? "");
  record.recordReply();
  return Response.json({ messageId });
}

async function send(record: InvocationRecord, request: Request): Promise<Response> {
  const name = decoded(request, h.binding);
  const binding = record.definition.sendEmail.find((candidate) => candidate.name === name);
  if (binding === undefined) throw new Error(`no send_email binding ${JSON.stringify(name)}`);
  const from = decoded(request, h.from) ?? "";
  const raw = Buffer.from(await request.arrayBuffer());
  const to = checkSendEmail(binding, { from, to: decoded(request, h.to), raw });
  return Response.json(await record.handlers.sendEmail(binding.name, from, to, raw));
}

async function kv(op: HostOp, record: InvocationRecord, request: Request): Promise<Response> {
  const store = record.handlers.kv;
  if (op === "kv-put") {
    const meta = JSON.parse(decoded(request, h.kv) ?? "{}") as KvPutRequest & { binding: string };
    const value = new Uint8Array(await request.arrayBuffer());
    const options = resolveKvPut(meta, value.byteLength, Math.floor(Date.now() / 1000));
    await store.put(namespaceOf(record, meta.binding), meta.key, value, options);
    return new Response(null, { status: 204 });
  }
  const body = (await request.json()) as { binding: string; key?: string; prefix?: unknown; limit?: unknown; cursor?: unknown };
  const namespace = namespaceOf(record, body.binding);
  if (op === "kv-list") return Response.json(await store.list(namespace, resolveKvList(body)));
  const key = String(body.key);
  if (op === "kv-delete") {
    checkKvKey("DELETE", key);
    await store.delete(namespace, key);
    return new Response(null, { status: 204 });
  }
  checkKvKey("GET", key);
  const entry = await store.get(namespace, key);
  if (entry === null) return new Response(null, { status: 404 });
  const headers: Record<string, string> = {};
  if (entry.metadata !== undefined && entry.metadata !== null) headers[h.kv] = encodeURIComponent(JSON.stringify(entry.metadata));
  return new Response(entry.value, { status: 200, headers });
}

// Cloudflare Queues: a message is at most 128 KB, a batch at most 100 messages
const MAX_QUEUE_MESSAGE_BYTES = 128 * 1024;
const MAX_QUEUE_BATCH = 100;

/** Analytics Engine, Queues and Workers AI: only the bindings of the worker's own definition. */
async function platformCall(op: "ae-write" | "queue-send" | "ai-run", record: InvocationRecord, request: Request): Promise<Response> {
  const bindings = record.definition.platform ?? NO_PLATFORM_BINDINGS;
  const handlers = record.handlers.platform;
  const body = (await request.json()) as { binding?: unknown; indexes?: string[]; blobs?: (string | null)[]; doubles?: number[]; messages?: unknown; model?: unknown; inputs?: unknown };
  if (op === "ae-write") {
    const binding = bindings.analytics.find((candidate) => candidate.binding === body.binding);
    if (binding === undefined) throw new Error(`no Analytics Engine binding ${JSON.stringify(body.binding)}`);
    if (handlers === undefined) throw new Error("Analytics Engine is not wired for this invocation");
    await handlers.writeDataPoint(binding.dataset, { indexes: body.indexes ?? [], blobs: body.blobs ?? [], doubles: body.doubles ?? [] });
    return new Response(null, { status: 204 });
  }
  if (op === "queue-send") {
    const binding = bindings.queues.find((candidate) => candidate.binding === body.binding);
    if (binding === undefined) throw new Error(`no queue binding ${JSON.stringify(body.binding)}`);
    if (handlers === undefined) throw new Error("Queues are not wired for this invocation");
    const messages = Array.isArray(body.messages) ? (body.messages as { body: string; contentType: string; delaySeconds: number }[]) : [];
    if (messages.length > MAX_QUEUE_BATCH) throw new WorkerCallError(`Queue sendBatch failed: batch has ${messages.length} messages; the limit is ${MAX_QUEUE_BATCH}`);
    for (const message of messages) {
      if (Buffer.byteLength(String(message.body), "utf8") > MAX_QUEUE_MESSAGE_BYTES) throw new WorkerCallError("Queue send failed: message too large (the limit is 128 KB)");
    }
    await handlers.sendToQueue(binding.queue, messages.map((message) => ({ body: String(message.body), contentType: String(message.contentType), delaySeconds: Number(message.delaySeconds) || 0 })));
    return new Response(null, { status: 204 });
  }
  const binding = bindings.ai.find((candidate) => candidate.binding === body.binding);
  if (binding === undefined) throw new Error(`no Workers AI binding ${JSON.stringify(body.binding)}`);
  if (handlers?.runAi === undefined) throw new WorkerCallError("Workers AI is not available on this mailroute server: no model runs here and no Workers AI endpoint is configured");
  return Response.json(await handlers.runAi(String(body.model), body.inputs));
}

const OPS: Record<HostOp, (record: InvocationRecord, request: Request) => Promise<Response>> = {
  "ae-write": (record, request) => platformCall("ae-write", record, request),
  "queue-send": (record, request) => platformCall("queue-send", record, request),
  "ai-run": (record, request) => platformCall("ai-run", record, request),
  forward,
  reply,
  send,
  "kv-get": (record, request) => kv("kv-get", record, request),
  "kv-put": (record, request) => kv("kv-put", record, request),
  "kv-delete": (record, request) => kv("kv-delete", record, request),
  "kv-list": (record, request) => kv("kv-list", record, request),
};

/** The service-binding handler for one account's runtime; `records` holds its invocations in flight. */
export function createHostBridge(records: ReadonlyMap<string, InvocationRecord>): (request: Request) => Promise<Response> {
  return async function hostBridge(request) {
    const record = records.get(request.headers.get(h.invocation) ?? "");
    if (record === undefined) return problem(410, "Cannot perform I/O on behalf of a different request.");
    const op = new URL(request.url).pathname.slice(1) as HostOp;
    const handle = Object.hasOwn(OPS, op) ? OPS[op] : undefined;
    if (handle === undefined) return problem(404, "internal error");
    try {
      return await handle(record, request);
    } catch (error) {
      if (error instanceof WorkerCallError) return problem(400, error.message, error.errorName);
      record.note("error", `${op} failed inside mailroute: ${error instanceof Error ? error.message : String(error)}`);
      return problem(500, "internal error");
    }
  };
}
