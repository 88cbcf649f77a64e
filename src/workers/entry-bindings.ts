/**
 * The entry worker's way back to the host, shipped as its own module: the host call (one POST
 * through the host service binding, tracked so the entry worker's answer waits for it) and the
 * env bindings built on it, KV namespaces and send_email, with Cloudflare's shapes (get text /
 * json / arrayBuffer / stream, bulk get as a Map, getWithMetadata, put with expirationTtl /
 * expiration / metadata, delete, list with prefix / limit / cursor; send(EmailMessage)), and
 * the platform's: Analytics Engine, Queue producers, Workers AI, D1 and R2 (workerd's own, handed
 * over from the entry worker's env), and a throwing stand-in for a binding mailroute lacks.
 *
 * Promises: argument checks workerd makes before any request happen here with workerd's texts;
 * every other rule is the host's (host-bridge.ts), whose refusal is rethrown verbatim. A call
 * made outside a live invocation fails as workerd fails cross-request I/O.
 *
 * Isolation (issue 8, item 10): the worker's own code shares this isolate, so nothing here may
 * be reachable from it. The module is not one of the worker's modules but the inner module of a
 * wrapped binding (workerd `wrapped`, an internal extension module no worker module can import):
 * the host service binding exists only inside it, and its API only in the entry worker's env,
 * which user code never sees. And it trusts only invocation states the entry worker opened with
 * it, keeping each one's id itself: a state forged (or edited) through the importable console
 * module names no invocation.
 *
 * `hostBindings` is shipped as source and must stay self-contained (see entry-worker.ts).
 */
import type { AsyncLocalStorage } from "node:async_hooks";
import type { LogSink } from "./entry-console.ts";
import { HOST_PROTOCOL, type EntryConfig, type HostOp, type HostProblem } from "./host-protocol.ts";

/** The wrapped binding's inner module, as Miniflare names it (it is no worker module). */
export const BINDINGS_MODULE = "mailroute-bindings.js";

/** One invocation inside the isolate: what its answer waits for, and what it reports. */
export interface InvocationState extends LogSink {
  id: string;
  waits: Promise<unknown>[];
  calls: Set<Promise<unknown>>;
  rejectReason: string | undefined;
}

export type BodyInit = ConstructorParameters<typeof Response>[0];

interface Fetcher {
  fetch(url: string, init?: RequestInit): Promise<Response>;
}

export interface HostBindings {
  /** Makes `state` an invocation the bindings act for, as `state.id`; the ALS finds the current one. */
  open(state: InvocationState, als: AsyncLocalStorage<InvocationState>): void;
  /** The invocation ended: its state names nothing any more. */
  close(state: InvocationState): void;
  call(state: InvocationState, op: HostOp, init: { json?: unknown; body?: Uint8Array; headers?: Record<string, string> }): Promise<Response>;
  /** `from`, `to` and the body bytes of a cloudflare:email EmailMessage. */
  unwrapEmailMessage(message: unknown): Promise<{ from: string; to: string | null; raw: Uint8Array }>;
  buildEnv(config: EntryConfig, runtimeEnv?: Record<string, unknown>): Record<string, unknown>;
}

export function hostBindings(host: Fetcher, protocol: typeof HOST_PROTOCOL): HostBindings {
  // cloudflare:email's EmailMessage keeps its body under this key (workerd + miniflare)
  const RAW_EMAIL = "EmailMessage::raw";
  const OTHER_REQUEST =
    "Cannot perform I/O on behalf of a different request. I/O objects (such as streams, request/response bodies, and others) created in the context of one request handler cannot be accessed from a different request's handler.";
  const h = protocol.headers;
  // the states the entry worker opened, with the id each was opened as
  const opened = new WeakMap<InvocationState, string>();
  let als: AsyncLocalStorage<InvocationState> | undefined;

  async function call(
    state: InvocationState,
    op: HostOp,
    init: { json?: unknown; body?: Uint8Array; headers?: Record<string, string> },
  ): Promise<Response> {
    const id = opened.get(state);
    if (id === undefined || state.done) throw new Error(OTHER_REQUEST);
    const headers: Record<string, string> = { ...init.headers, [h.invocation]: id };
    let body: BodyInit | undefined = init.body;
    if (init.json !== undefined) {
      body = JSON.stringify(init.json);
      headers["content-type"] = "application/json";
    }
    const pending = host.fetch(`http://host/${op}`, { method: "POST", headers, body });
    // the answer waits for every host call, so the host's record is complete when it is read
    state.calls.add(pending);
    try {
      const response = await pending;
      if (response.ok || response.status === 404) return response;
      const problem = (await response.json().catch(() => null)) as HostProblem | null;
      const ErrorType = problem?.name === "TypeError" ? TypeError : Error;
      throw new ErrorType(problem?.error ?? "internal error");
    } finally {
      state.calls.delete(pending);
    }
  }

  function current(): InvocationState {
    const state = als?.getStore();
    if (state === undefined || state.done || !opened.has(state)) throw new Error(OTHER_REQUEST);
    return state;
  }

  async function bytesOf(value: unknown): Promise<Uint8Array> {
    if (value === undefined || value === null) return new Uint8Array();
    return new Uint8Array(await new Response(value as BodyInit).arrayBuffer());
  }

  async function unwrapEmailMessage(message: unknown): Promise<{ from: string; to: string | null; raw: Uint8Array }> {
    if (typeof message !== "object" || message === null || !("from" in message)) {
      throw new TypeError("Expected an EmailMessage (import { EmailMessage } from \"cloudflare:email\").");
    }
    const fields = message as Record<string, unknown>;
    const to = fields.to === undefined || fields.to === null ? null : String(fields.to);
    return { from: String(fields.from), to, raw: await bytesOf(fields[RAW_EMAIL] ?? fields.raw) };
  }

  const encode = encodeURIComponent;

  type KvType = "text" | "json" | "arrayBuffer" | "stream";

  function kvType(options: unknown): KvType {
    const type = typeof options === "string" ? options : (options as { type?: string } | undefined)?.type;
    if (type === undefined || type === "text" || type === "json" || type === "arrayBuffer" || type === "stream") return type ?? "text";
    throw new TypeError('Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".');
  }

  function kvDecode(bytes: Uint8Array, type: KvType): unknown {
    if (type === "arrayBuffer") return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    if (type === "stream") return new Response(bytes).body;
    const text = new TextDecoder().decode(bytes);
    return type === "json" ? JSON.parse(text) : text;
  }

  class KvNamespace {
    readonly #binding: string;

    constructor(binding: string) {
      this.#binding = binding;
    }

    async #read(key: string): Promise<{ bytes: Uint8Array; metadata: unknown } | null> {
      const response = await call(current(), "kv-get", { json: { binding: this.#binding, key: String(key) } });
      if (response.status === 404) return null;
      const metadata = response.headers.get(h.kv);
      return { bytes: new Uint8Array(await response.arrayBuffer()), metadata: metadata === null ? null : JSON.parse(decodeURIComponent(metadata)) };
    }

    // Cloudflare's bulk read: up to 100 keys, text or json only, answered as a Map
    async #bulk(keys: unknown[], options: unknown, withMetadata: boolean): Promise<Map<string, unknown>> {
      const type = kvType(options);
      if (type !== "text" && type !== "json") throw new Error(`KV GET_BULK failed: 400 "${type}" is not a valid type. Use "json" or "text"`);
      if (keys.length > 100) throw new Error("KV GET_BULK failed: 400 You can request a maximum of 100 keys");
      if (keys.length < 1) throw new Error("KV GET_BULK failed: 400 You must request a minimum of 1 key");
      const entries = await Promise.all(keys.map(async (key) => [String(key), await this.#read(String(key))] as const));
      return new Map(
        entries.map(([key, entry]) => {
          const value = entry === null ? null : kvDecode(entry.bytes, type);
          return [key, withMetadata ? (entry === null ? null : { value, metadata: entry.metadata }) : value];
        }),
      );
    }

    async get(key: unknown, options?: unknown): Promise<unknown> {
      if (Array.isArray(key)) return this.#bulk(key, options, false);
      const type = kvType(options);
      const entry = await this.#read(String(key));
      return entry === null ? null : kvDecode(entry.bytes, type);
    }

    async getWithMetadata(key: unknown, options?: unknown): Promise<unknown> {
      if (Array.isArray(key)) return this.#bulk(key, options, true);
      const type = kvType(options);
      const entry = await this.#read(String(key));
      if (entry === null) return { value: null, metadata: null, cacheStatus: null };
      return { value: kvDecode(entry.bytes, type), metadata: entry.metadata, cacheStatus: null };
    }

    async put(key: unknown, value: unknown, options?: { expiration?: unknown; expirationTtl?: unknown; metadata?: unknown }): Promise<void> {
      const state = current();
      const body = value instanceof ReadableStream || value instanceof ArrayBuffer || ArrayBuffer.isView(value) ? await bytesOf(value) : new TextEncoder().encode(String(value));
      const meta = { binding: this.#binding, key: String(key), expiration: options?.expiration, expirationTtl: options?.expirationTtl, metadata: options?.metadata };
      await call(state, "kv-put", { body, headers: { [h.kv]: encode(JSON.stringify(meta)) } });
    }

    async delete(key: unknown): Promise<void> {
      await call(current(), "kv-delete", { json: { binding: this.#binding, key: String(key) } });
    }

    async list(options?: { prefix?: unknown; limit?: unknown; cursor?: unknown }): Promise<unknown> {
      const request = { binding: this.#binding, prefix: options?.prefix ?? undefined, limit: options?.limit ?? undefined, cursor: options?.cursor ?? undefined };
      const response = await call(current(), "kv-list", { json: request });
      return { ...((await response.json()) as object), cacheStatus: null };
    }
  }

  class SendEmail {
    readonly #binding: string;

    constructor(binding: string) {
      this.#binding = binding;
    }

    async send(message: unknown): Promise<{ messageId: string }> {
      const state = current();
      const { from, to, raw } = await unwrapEmailMessage(message);
      const headers: Record<string, string> = { [h.binding]: encode(this.#binding), [h.from]: encode(from) };
      if (to !== null) headers[h.to] = encode(to);
      const response = await call(state, "send", { body: raw, headers });
      return (await response.json()) as { messageId: string };
    }
  }

  // Analytics Engine (Cloudflare, "Write data points"): at most 1 index of 96 bytes, 20 blobs of
  // 16 KiB in all, 20 doubles; writeDataPoint returns nothing and never blocks the worker
  class AnalyticsEngineDataset {
    readonly #binding: string;

    constructor(binding: string) {
      this.#binding = binding;
    }

    writeDataPoint(point?: { indexes?: unknown[]; blobs?: unknown[]; doubles?: unknown[] }): void {
      const state = current();
      const indexes = (point?.indexes ?? []).map((value) => (value instanceof ArrayBuffer || ArrayBuffer.isView(value) ? new TextDecoder().decode(value as ArrayBuffer) : String(value)));
      const blobs = (point?.blobs ?? []).map((value) => (value === null || value === undefined ? null : value instanceof ArrayBuffer || ArrayBuffer.isView(value) ? new TextDecoder().decode(value as ArrayBuffer) : String(value)));
      const doubles = (point?.doubles ?? []).map(Number);
      if (indexes.length > 1) throw new TypeError("writeDataPoint(): a data point has at most 1 index");
      if (indexes.some((index) => new TextEncoder().encode(index).byteLength > 96)) throw new TypeError("writeDataPoint(): an index is at most 96 bytes");
      if (blobs.length > 20) throw new TypeError("writeDataPoint(): a data point has at most 20 blobs");
      if (doubles.length > 20) throw new TypeError("writeDataPoint(): a data point has at most 20 doubles");
      if (blobs.reduce((sum, blob) => sum + (blob === null ? 0 : new TextEncoder().encode(blob).byteLength), 0) > 16 * 1024) throw new TypeError("writeDataPoint(): the blobs of a data point are at most 16 KiB in all");
      call(state, "ae-write", { json: { binding: this.#binding, indexes, blobs, doubles } }).catch((error: unknown) => {
        // the invocation's async context holds here, so the console capture files it under it
        console.error("writeDataPoint failed:", error);
      });
    }
  }

  type QueueContentType = "json" | "text" | "bytes" | "v8";

  // the body travels as text: JSON for json and v8 (structured data that JSON can carry), base64 for bytes
  async function queueMessage(body: unknown, options?: { contentType?: unknown; delaySeconds?: unknown }): Promise<{ body: string; contentType: QueueContentType; delaySeconds: number }> {
    const contentType = (options?.contentType ?? "json") as QueueContentType;
    if (!["json", "text", "bytes", "v8"].includes(contentType)) throw new TypeError(`Unknown Queue content type "${String(contentType)}"`);
    let text: string;
    if (contentType === "text") text = String(body);
    else if (contentType === "bytes") {
      const bytes = await bytesOf(body);
      let binary = "";
      for (const byte of bytes) binary += String.fromCharCode(byte);
      text = btoa(binary);
    } else {
      const json = JSON.stringify(body);
      if (json === undefined) throw new TypeError("Queue message body cannot be serialised");
      text = json;
    }
    const delaySeconds = Number(options?.delaySeconds ?? 0);
    if (!(delaySeconds >= 0 && delaySeconds <= 43200)) throw new RangeError("delaySeconds must be between 0 and 43200");
    return { body: text, contentType, delaySeconds };
  }

  class QueueProducer {
    readonly #binding: string;

    constructor(binding: string) {
      this.#binding = binding;
    }

    async send(body: unknown, options?: { contentType?: unknown; delaySeconds?: unknown }): Promise<void> {
      const state = current();
      await call(state, "queue-send", { json: { binding: this.#binding, messages: [await queueMessage(body, options)] } });
    }

    async sendBatch(messages: Iterable<{ body: unknown; contentType?: unknown; delaySeconds?: unknown }>, options?: { delaySeconds?: unknown }): Promise<void> {
      const state = current();
      const list = [];
      for (const message of messages) list.push(await queueMessage(message.body, { contentType: message.contentType, delaySeconds: message.delaySeconds ?? options?.delaySeconds }));
      if (list.length > 100) throw new RangeError("sendBatch(): at most 100 messages per batch");
      await call(state, "queue-send", { json: { binding: this.#binding, messages: list } });
    }
  }

  class Ai {
    readonly #binding: string;

    constructor(binding: string) {
      this.#binding = binding;
    }

    async run(model: unknown, inputs: unknown): Promise<unknown> {
      const response = await call(current(), "ai-run", { json: { binding: this.#binding, model: String(model), inputs } });
      return response.json();
    }
  }

  // a binding declared in the worker's config that this server does not provide: any use throws
  // (the message is answered 451 and retried), never a silent undefined
  function missingBinding(name: string, type: string): unknown {
    const fail = (): never => {
      throw new Error(`binding ${name} (${type}) is not available on this mailroute server`);
    };
    return new Proxy(function missing() {}, {
      get(_target, property) {
        if (typeof property === "symbol" || property === "then" || property === "toJSON") return undefined;
        return fail();
      },
      apply: fail,
      construct: fail,
    });
  }

  // one env per isolate, as on Cloudflare: workers may cache things on it
  function buildEnv(config: EntryConfig, runtimeEnv: Record<string, unknown> = {}): Record<string, unknown> {
    const env: Record<string, unknown> = { ...config.vars, ...config.secrets };
    for (const binding of config.kv) env[binding] = new KvNamespace(binding);
    for (const binding of config.sendEmail) env[binding] = new SendEmail(binding);
    // only the worker's own native bindings: never the entry worker's way to the host
    const ours: string[] = [protocol.hostBinding, protocol.bindingsBinding, protocol.configBinding];
    for (const binding of config.native ?? []) if (!ours.includes(binding)) env[binding] = runtimeEnv[binding];
    for (const binding of config.analytics ?? []) env[binding] = new AnalyticsEngineDataset(binding);
    for (const binding of config.queues ?? []) env[binding] = new QueueProducer(binding);
    for (const binding of config.ai ?? []) env[binding] = new Ai(binding);
    for (const { binding, type } of config.missing ?? []) env[binding] = missingBinding(binding, type);
    return env;
  }

  return {
    open(state, storage) {
      if (!opened.has(state)) opened.set(state, String(state.id));
      als ??= storage;
    },
    close(state) {
      opened.delete(state);
    },
    call,
    unwrapEmailMessage,
    buildEnv,
  };
}

/**
 * The wrapped binding's module: workerd calls its default export with the inner bindings (the
 * host service) and hands the result to the entry worker as env[HOST_PROTOCOL.bindingsBinding].
 * One instance per isolate, whichever env asks.
 */
export const BINDINGS_MODULE_SOURCE = [
  `const create = ${hostBindings.toString()};`,
  "let bindings;",
  `export default function mailrouteBindings(env) { return (bindings ??= create(env[${JSON.stringify(HOST_PROTOCOL.hostBinding)}], ${JSON.stringify(HOST_PROTOCOL)})); }`,
  "",
].join("\n");
