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
 * - forward() / reply() resolve or reject with what the host decided (entry-bindings.ts carries
 *   the calls and builds env's KV and send_email bindings); a refusal is rethrown as an Error
 *   whose message is the host's text, verbatim. Every rule lives on the host side: this module
 *   runs in the same isolate as untrusted code, so it enforces nothing.
 * - The answer is sent only after the handler settled, every ctx.waitUntil() promise settled and
 *   every host call in flight settled, so the host's record of the invocation is complete.
 * - console.* output is captured per invocation (entry-console.ts) and returned in the report.
 * - The host API comes from this request's env every time, never from module state: the user's
 *   code can import this module and call its fetch() itself, but only with an env of its own,
 *   which holds no way to the host (entry-bindings.ts, "Isolation").
 *
 * `entryModule` is shipped as source (Function.prototype.toString), so it must stay
 * self-contained: no references to anything outside its own body but its parameters and
 * workerd's globals (a bundler must not inject helpers into it). It is type-checked here with
 * Node's fetch types, which match workerd's.
 */
import type { HostBindings, InvocationState } from "./entry-bindings.ts";
import { CONSOLE_MODULE, CONSOLE_MODULE_SOURCE, type ConsoleCapture } from "./entry-console.ts";
import { HOST_PROTOCOL, type EntryConfig, type EntryReport } from "./host-protocol.ts";
import type { WorkerModule } from "./worker-upload.ts";

/** The user's bundle, as a module of its own next to ours. */
export const USER_MODULE = "user.js";
export const ENTRY_MODULE = "mailroute-entry.js";

type HeadersInit = ConstructorParameters<typeof Headers>[0];

interface EmailHandlerObject {
  email(message: unknown, env: unknown, ctx: unknown): unknown;
}

export function entryModule(
  capture: ConsoleCapture<InvocationState>,
  user: { default?: unknown },
  protocol: typeof HOST_PROTOCOL,
): { fetch(request: Request, env: Record<string, unknown>): Promise<Response> } {
  const h = protocol.headers;
  const { als, record } = capture;
  const encode = encodeURIComponent;
  let userEnv: Record<string, unknown> | undefined;

  function describe(thrown: unknown): string {
    if (thrown instanceof Error) return thrown.name === "Error" ? thrown.message : `${thrown.name}: ${thrown.message}`;
    return String(thrown);
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
    readonly #bindings: HostBindings;
    readonly #state: InvocationState;
    readonly #from: string;
    readonly #to: string;
    readonly #raw: Uint8Array;
    readonly #headers: Headers;

    constructor(bindings: HostBindings, state: InvocationState, from: string, to: string, raw: Uint8Array) {
      this.#bindings = bindings;
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
      const response = await this.#bindings.call(this.#state, "forward", { json: { rcptTo: String(rcptTo), headers: extra } });
      return (await response.json()) as { messageId: string };
    }

    async reply(message: unknown): Promise<{ messageId: string }> {
      const { from, to, raw } = await this.#bindings.unwrapEmailMessage(message);
      const headers: Record<string, string> = { [h.from]: encode(from) };
      if (to !== null) headers[h.to] = encode(to);
      const response = await this.#bindings.call(this.#state, "reply", { body: raw, headers });
      return (await response.json()) as { messageId: string };
    }
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

  // the user's handler `name` as a function of (argument, env, ctx), or null when it has none:
  // a method of the default export (called as a method), or of a WorkerEntrypoint class
  function handlerOf(name: string, env: Record<string, unknown>, ctx: object): ((argument: unknown) => unknown) | null {
    const exported = user.default;
    if (typeof exported === "function" && typeof (exported.prototype as Record<string, unknown> | undefined)?.[name] === "function") {
      const Entrypoint = exported as new (ctx: object, env: object) => Record<string, (...args: unknown[]) => unknown>;
      const instance = new Entrypoint(ctx, env);
      return (argument) => instance[name]!(argument, env, ctx);
    }
    if (typeof exported !== "object" || exported === null) return null;
    const method = (exported as Record<string, unknown>)[name];
    if (typeof method !== "function") return null;
    return (argument) => (method as (...args: unknown[]) => unknown).call(exported, argument, env, ctx);
  }

  function handlerNames(): string[] {
    const exported = user.default;
    const source = (typeof exported === "function" ? exported.prototype : exported) as Record<string, unknown> | null | undefined;
    if (typeof source !== "object" || source === null) return [];
    return ["email", "fetch", "queue", "scheduled", "tail"].filter((name) => typeof source[name] === "function");
  }

  function base64(bytes: Uint8Array): string {
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(binary);
  }

  function queueBody(message: { body: string; contentType: string }): unknown {
    if (message.contentType === "text") return message.body;
    if (message.contentType === "bytes") return Uint8Array.from(atob(message.body), (char) => char.charCodeAt(0)).buffer;
    return JSON.parse(message.body);
  }

  interface QueueBatchInput {
    queue: string;
    messages: { id: string; timestamp: number; body: string; contentType: string; attempts: number }[];
  }

  // The ctx every handler gets: waitUntil() promises settle before the invocation answers.
  function executionContext(state: InvocationState) {
    return {
      waitUntil(promise: unknown): void {
        state.waits.push(Promise.resolve(promise).catch((reason: unknown) => record("error", ["Uncaught (in promise)", reason])));
      },
      passThroughOnException(): void {},
      props: {},
    };
  }

  // fetch() and queue() invocations: the same state, console capture and settling as email()
  async function runOther(kind: "fetch" | "queue", request: Request, state: InvocationState, workerEnv: Record<string, unknown>, report: EntryReport): Promise<void> {
    const spec = JSON.parse(decodeURIComponent(request.headers.get(h.handler) ?? "{}")) as { method?: string; url?: string; headers?: [string, string][] };
    const body = await request.arrayBuffer();
    await als.run(state, async () => {
      const ctx = executionContext(state);
      try {
        const handler = handlerOf(kind, workerEnv, ctx);
        if (handler === null) throw new Error(`Handler does not export a ${kind}() function.`);
        if (kind === "fetch") {
          const method = spec.method ?? "GET";
          const incoming = new Request(spec.url ?? "http://localhost/", { method, headers: spec.headers ?? [], body: method === "GET" || method === "HEAD" ? undefined : body });
          const response = (await handler(incoming)) as Response;
          if (!(response instanceof Response)) throw new TypeError("Incorrect type for Promise: the Promise did not resolve to 'Response'.");
          report.response = { status: response.status, statusText: response.statusText, headers: [...response.headers], body: base64(new Uint8Array(await response.arrayBuffer())) };
        } else {
          const input = JSON.parse(new TextDecoder().decode(body)) as QueueBatchInput;
          const verdicts = { acked: [] as string[], retried: [] as { id: string; delaySeconds: number }[], ackAll: false, retryAll: null as { delaySeconds: number } | null };
          report.queue = verdicts;
          const messages = input.messages.map((message) => ({
            id: message.id,
            timestamp: new Date(message.timestamp),
            body: queueBody(message),
            attempts: message.attempts,
            ack(): void {
              verdicts.acked.push(message.id);
            },
            retry(options?: { delaySeconds?: number }): void {
              verdicts.retried.push({ id: message.id, delaySeconds: Number(options?.delaySeconds ?? 0) });
            },
          }));
          await handler({
            queue: input.queue,
            messages,
            ackAll(): void {
              verdicts.ackAll = true;
            },
            retryAll(options?: { delaySeconds?: number }): void {
              verdicts.retryAll = { delaySeconds: Number(options?.delaySeconds ?? 0) };
            },
          });
        }
      } catch (thrown) {
        report.error = describe(thrown);
        record("error", ["Uncaught", thrown]);
      }
      await settle(state);
    });
  }

  return {
    async fetch(request: Request, env: Record<string, unknown>): Promise<Response> {
      const path = new URL(request.url).pathname;
      // the host asks this after a deadline: an answer means no isolate of the process is stuck
      if (path === protocol.pingPath) return new Response("ok");
      // from this env, never cached: a call of ours made by the user's code brings its own env
      const bindings = env[protocol.bindingsBinding] as HostBindings | undefined;
      if (bindings === undefined) return new Response("no host bindings", { status: 500 });
      // D1 and R2 are workerd's own bindings in this env: buildEnv hands the user only those
      userEnv ??= bindings.buildEnv(env[protocol.configBinding] as EntryConfig, env);
      // a deploy asks which handlers the module exports before it reports success
      if (path === protocol.probePath) return Response.json({ logs: capture.takeOrphans(), logsDropped: 0, handlers: handlerNames() } satisfies EntryReport);
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
      bindings.open(state, als);
      const report: EntryReport = { logs: state.logs, logsDropped: 0 };
      const workerEnv = userEnv;
      if (path === protocol.fetchPath || path === protocol.queuePath) {
        await runOther(path === protocol.fetchPath ? "fetch" : "queue", request, state, workerEnv, report);
        state.done = true;
        bindings.close(state);
        report.logsDropped = state.logsDropped;
        return Response.json(report);
      }
      const raw = new Uint8Array(await request.arrayBuffer());
      await als.run(state, async () => {
        const ctx = executionContext(state);
        try {
          await runHandler(new ForwardableEmailMessage(bindings, state, header(h.from), header(h.to), raw), workerEnv, ctx);
        } catch (thrown) {
          report.error = describe(thrown);
          record("error", ["Uncaught", thrown]);
        }
        await settle(state);
      });
      state.done = true;
      bindings.close(state);
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

/**
 * Module names of ours: a worker's own module of the same name would be shadowed. The host API
 * is not among them: it is no module of the worker (entry-bindings.ts, "Isolation").
 */
export const RESERVED_MODULES: readonly string[] = [ENTRY_MODULE, CONSOLE_MODULE, USER_MODULE];

/**
 * The modules of one worker, main module first; the user's main module is `bundle`, its other
 * modules (wrangler's rules, no_bundle) sit beside it under their own names, so its relative
 * imports resolve as on Cloudflare. The host API is not among them: it is a wrapped binding
 * (entry-bindings.ts), out of the user's import reach.
 */
export function workerModules(bundle: string, extra: readonly WorkerModule[] = []): { path: string; contents: string | Uint8Array; type: WorkerModule["type"] }[] {
  return [
    { path: ENTRY_MODULE, contents: ENTRY_WORKER_SOURCE, type: "ESModule" },
    { path: CONSOLE_MODULE, contents: CONSOLE_MODULE_SOURCE, type: "ESModule" },
    { path: USER_MODULE, contents: bundle, type: "ESModule" },
    ...extra.map((module) => {
      const bytes = Buffer.from(module.base64, "base64");
      const textual = module.type === "ESModule" || module.type === "CommonJS" || module.type === "Text";
      return { path: module.name, contents: textual ? bytes.toString("utf8") : new Uint8Array(bytes), type: module.type };
    }),
  ];
}
