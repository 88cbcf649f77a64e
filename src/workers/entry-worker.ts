/**
 * Our entry worker: the module workerd runs beside the user's bundle (imported as "./user.js").
 * For each invocation it builds the `message`, `env` and `ctx` of Cloudflare's Email Workers
 * Runtime API, calls `email()` as a method of the user's default export, and reports back.
 *
 * Promises (Runtime API, "ForwardableEmailMessage definition"):
 * - message.from / message.to are the envelope, untouched (sub-address detail kept);
 *   message.headers is a real Headers parsed from the raw header block (case-insensitive,
 *   folded lines joined); message.raw is a fresh ReadableStream on every access, so it can be read
 *   twice and after forward(); message.rawSize is the byte length.
 * - forward() / reply() / env.<SEND_EMAIL>.send() / KV resolve or reject with what the host
 *   decided; a refusal is rethrown as an Error whose message is the host's text, verbatim. Every
 *   rule lives on the host side: this module runs in the same isolate as untrusted code, so it
 *   enforces nothing.
 * - The answer is sent only after the handler settled, every ctx.waitUntil() promise settled and
 *   every host call in flight settled, so the host's record of the invocation is complete.
 * - console.* output is captured per invocation (entry-console.ts) and returned in the report.
 *
 * `entryModule` is shipped as source (Function.prototype.toString), so it must stay
 * self-contained: no references to anything outside its own body but its parameters and
 * workerd's globals. It is type-checked here with Node's fetch types, which match workerd's.
 */
import { CONSOLE_MODULE, CONSOLE_MODULE_SOURCE, type ConsoleCapture, type LogSink } from "./entry-console.ts";
import { HOST_PROTOCOL, type EntryConfig, type EntryReport, type HostOp, type HostProblem } from "./host-protocol.ts";

/** The user's bundle, as a module of its own next to ours. */
export const USER_MODULE = "user.js";
export const ENTRY_MODULE = "mailroute-entry.js";

interface InvocationState extends LogSink {
  id: string;
  waits: Promise<unknown>[];
  calls: Set<Promise<unknown>>;
  rejectReason: string | undefined;
}

type BodyInit = ConstructorParameters<typeof Response>[0];
type HeadersInit = ConstructorParameters<typeof Headers>[0];

interface Fetcher {
  fetch(url: string, init?: RequestInit): Promise<Response>;
}

interface EmailHandlerObject {
  email(message: unknown, env: unknown, ctx: unknown): unknown;
}

export function entryModule(
  capture: ConsoleCapture<InvocationState>,
  user: { default?: unknown },
  protocol: typeof HOST_PROTOCOL,
): { fetch(request: Request, env: Record<string, unknown>): Promise<Response> } {
  // cloudflare:email's EmailMessage keeps its body under this key (workerd + miniflare)
  const RAW_EMAIL = "EmailMessage::raw";
  const OTHER_REQUEST =
    "Cannot perform I/O on behalf of a different request. I/O objects (such as streams, request/response bodies, and others) created in the context of one request handler cannot be accessed from a different request's handler.";
  const h = protocol.headers;
  const { als, record } = capture;
  let host: Fetcher | undefined;
  let userEnv: Record<string, unknown> | undefined;

  function describe(thrown: unknown): string {
    if (thrown instanceof Error) return thrown.name === "Error" ? thrown.message : `${thrown.name}: ${thrown.message}`;
    return String(thrown);
  }

  async function call(
    state: InvocationState,
    op: HostOp,
    init: { json?: unknown; body?: Uint8Array; headers?: Record<string, string> },
  ): Promise<Response> {
    if (state.done || host === undefined) throw new Error(OTHER_REQUEST);
    const headers: Record<string, string> = { [h.invocation]: state.id, ...init.headers };
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
    const state = als.getStore();
    if (state === undefined || state.done) throw new Error(OTHER_REQUEST);
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

  function encode(value: string): string {
    return encodeURIComponent(value);
  }

  // RFC 5322 §2.2: the header block ends at the first empty line; folded lines are joined with
  // one space, as postal-mime does in Cloudflare's own examples
  function parseHeaders(raw: Uint8Array): Headers {
    let end = raw.length;
    for (let i = 0, lineStart = 0; i < raw.length; i++) {
      if (raw[i] !== 10) continue;
      if (i === lineStart || (i === lineStart + 1 && raw[lineStart] === 13)) {
        end = lineStart;
        break;
      }
      lineStart = i + 1;
    }
    const text = new TextDecoder().decode(raw.subarray(0, end));
    const headers = new Headers();
    for (const field of text.split(/\r?\n(?![ \t])/)) {
      const colon = field.indexOf(":");
      if (colon <= 0) continue;
      try {
        headers.append(field.slice(0, colon).trim(), field.slice(colon + 1).replace(/\r?\n[ \t]+/g, " ").trim());
      } catch {
        // a field name Headers refuses (spaces, 8-bit) is left out rather than failing the message
      }
    }
    return headers;
  }

  class ForwardableEmailMessage {
    readonly #state: InvocationState;
    readonly #from: string;
    readonly #to: string;
    readonly #raw: Uint8Array;
    readonly #headers: Headers;

    constructor(state: InvocationState, from: string, to: string, raw: Uint8Array) {
      this.#state = state;
      this.#from = from;
      this.#to = to;
      this.#raw = raw;
      this.#headers = parseHeaders(raw);
    }

    get from(): string {
      return this.#from;
    }
    get to(): string {
      return this.#to;
    }
    get headers(): Headers {
      return this.#headers;
    }
    // a new stream per read: workers read raw, then forward() (which sends the stored bytes)
    get raw(): ReadableStream<Uint8Array> {
      return new Response(this.#raw).body as ReadableStream<Uint8Array>;
    }
    get rawSize(): number {
      return this.#raw.byteLength;
    }

    setReject(reason: string): void {
      this.#state.rejectReason = String(reason);
    }

    async forward(rcptTo: string, headers?: HeadersInit | null): Promise<{ messageId: string }> {
      const extra = headers === undefined || headers === null ? [] : [...new Headers(headers)];
      const response = await call(this.#state, "forward", { json: { rcptTo: String(rcptTo), headers: extra } });
      return (await response.json()) as { messageId: string };
    }

    async reply(message: unknown): Promise<{ messageId: string }> {
      const { from, to, raw } = await unwrapEmailMessage(message);
      const headers: Record<string, string> = { [h.from]: encode(from) };
      if (to !== null) headers[h.to] = encode(to);
      const response = await call(this.#state, "reply", { body: raw, headers });
      return (await response.json()) as { messageId: string };
    }
  }

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

  // one env per isolate, as on Cloudflare: workers may cache things on it
  function buildEnv(config: EntryConfig): Record<string, unknown> {
    const env: Record<string, unknown> = { ...config.vars, ...config.secrets };
    for (const binding of config.kv) env[binding] = new KvNamespace(binding);
    for (const binding of config.sendEmail) env[binding] = new SendEmail(binding);
    return env;
  }

  async function settle(state: InvocationState): Promise<void> {
    for (;;) {
      const pending = [...state.waits.splice(0), ...state.calls];
      if (pending.length === 0) return;
      await Promise.allSettled(pending);
    }
  }

  async function runHandler(message: ForwardableEmailMessage, env: Record<string, unknown>, ctx: object): Promise<void> {
    const exported = user.default;
    // `export default class extends WorkerEntrypoint { email(message) {} }`
    if (typeof exported === "function" && typeof exported.prototype?.email === "function") {
      const Entrypoint = exported as new (ctx: object, env: object) => EmailHandlerObject;
      await new Entrypoint(ctx, env).email(message, env, ctx);
      return;
    }
    if (typeof exported !== "object" || exported === null || typeof (exported as Partial<EmailHandlerObject>).email !== "function") {
      throw new Error("Handler does not export an email() function.");
    }
    // a method call, so `this` is the exported object
    await (exported as EmailHandlerObject).email(message, env, ctx);
  }

  return {
    async fetch(request: Request, env: Record<string, unknown>): Promise<Response> {
      // the host asks this after a deadline: an answer means no isolate of the process is stuck
      if (new URL(request.url).pathname === protocol.pingPath) return new Response("ok");
      host ??= env[protocol.hostBinding] as Fetcher;
      userEnv ??= buildEnv(env[protocol.configBinding] as EntryConfig);
      const header = (name: string) => decodeURIComponent(request.headers.get(name) ?? "");
      const state: InvocationState = {
        id: request.headers.get(h.invocation) ?? "",
        logs: capture.takeOrphans(),
        logsDropped: 0,
        waits: [],
        calls: new Set(),
        rejectReason: undefined,
        done: false,
      };
      const raw = new Uint8Array(await request.arrayBuffer());
      const report: EntryReport = { logs: state.logs, logsDropped: 0 };
      const workerEnv = userEnv;
      await als.run(state, async () => {
        const ctx = {
          waitUntil(promise: unknown): void {
            state.waits.push(Promise.resolve(promise).catch((reason: unknown) => record("error", ["Uncaught (in promise)", reason])));
          },
          passThroughOnException(): void {},
          props: {},
        };
        try {
          await runHandler(new ForwardableEmailMessage(state, header(h.from), header(h.to), raw), workerEnv, ctx);
        } catch (thrown) {
          report.error = describe(thrown);
          record("error", ["Uncaught", thrown]);
        }
        await settle(state);
      });
      state.done = true;
      if (state.rejectReason !== undefined) report.rejectReason = state.rejectReason;
      report.logsDropped = state.logsDropped;
      return Response.json(report);
    },
  };
}

/** The entry module's source, as workerd loads it: the console capture is imported first. */
export const ENTRY_WORKER_SOURCE = [
  `import capture from "./${CONSOLE_MODULE}";`,
  `import * as user from "./${USER_MODULE}";`,
  `export default (${entryModule.toString()})(capture, user, ${JSON.stringify(HOST_PROTOCOL)});`,
  "",
].join("\n");

/** The modules of one worker, main module first; the user's bundle is `bundle`. */
export function workerModules(bundle: string): { path: string; contents: string }[] {
  return [
    { path: ENTRY_MODULE, contents: ENTRY_WORKER_SOURCE },
    { path: CONSOLE_MODULE, contents: CONSOLE_MODULE_SOURCE },
    { path: USER_MODULE, contents: bundle },
  ];
}
