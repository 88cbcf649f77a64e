/**
 * One workerd process (through Miniflare) running a fixed set of one account's workers, each as
 * a named worker made of our entry module and the user's bundle. A changed set is a new
 * generation: workerd cannot swap one worker of a running process (Miniflare's setOptions
 * restarts the whole process anyway, measured at 160-270 ms against 300-350 ms for a new one), and
 * a fresh process lets the old one finish its invocations while the new one starts.
 *
 * Promises:
 * - `ready` resolves once workerd listens and, on Linux, its memory cap is in place.
 * - Outbound fetch() reaches public addresses and the configured allow-list only: workerd's own
 *   network filter checks the address it actually connects to (so DNS rebinding does not get
 *   around it), refusing loopback, private (RFC 1918, fc00::/7), link-local, 0.0.0.0 and
 *   IPv4-mapped forms of those.
 * - workerd's output is always drained (an unread pipe would block the process) and reported as
 *   events, one line each; the reasons behind "internal error; reference = …" are kept for
 *   internalErrorReason() (internal-error-log.ts).
 * - stop() kills the process whatever it is doing (an infinite loop included) in ~10 ms.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { Miniflare, supportedCompatibilityDate, type WorkerOptions } from "miniflare";
import { BINDINGS_MODULE, BINDINGS_MODULE_SOURCE } from "./entry-bindings.ts";
import { workerModules } from "./entry-worker.ts";
import { InternalErrorLog } from "./internal-error-log.ts";
import { HOST_PROTOCOL, type EntryConfig, type EntryReport } from "./host-protocol.ts";
import type { InvocationRecord } from "./invocation-record.ts";
import { NO_PLATFORM_BINDINGS } from "./platform-bindings.ts";
import { gatewayR2Bindings, r2GatewayWorker } from "./r2-gateway.ts";
import type { WorkerDefinition } from "./worker-types.ts";
import { findWorkerdByPort, limitDataSegment, readProcessMemory } from "./workerd-process.ts";

export interface RuntimeEvent {
  event: string;
  account: string;
  [detail: string]: unknown;
}

export interface DeployedWorker {
  definition: WorkerDefinition;
  /** Changes whenever anything workerd runs changes: bundle, flags, vars, secrets, bindings. */
  fingerprint: string;
}

export interface GenerationOptions {
  account: string;
  workers: ReadonlyMap<string, DeployedWorker>;
  hostBridge: (request: Request) => Promise<Response>;
  /** CIDRs reachable besides public addresses (e.g. "127.0.0.1/32" for a test's webhook sink). */
  outboundAllow: readonly string[];
  /** Memory the process may commit beyond its idle size; null: no cap. */
  memoryLimitBytes: number | null;
  /**
   * Serves the account's R2 bindings (r2-wire.ts over the store: cluster mode); absent, they are
   * miniflare's own R2, on disk under the storage folder (or in memory).
   */
  r2Host?: (request: Request) => Promise<Response>;
  onEvent: (event: RuntimeEvent) => void;
}

const h = HOST_PROTOCOL.headers;
// flags that make node:async_hooks importable, which the entry worker's log capture needs
const ALS_FLAGS = ["nodejs_compat", "nodejs_compat_v2", "nodejs_als"];
// retire a process whose resident size passed this share of its cap: buffers a worker let go of
// are not always returned, and the next worker would fail its allocations
const RETIRE_AT_SHARE_OF_CAP = 0.75;

const fingerprints = new WeakMap<WorkerDefinition, string>();
const MODULES_ROOT = "/";
// the wrapped binding's worker: Miniflare makes its one module an internal extension module
const BINDINGS_SERVICE = "mailroute-host-bindings";

/** The host API every worker of the generation gets as a wrapped binding; it must come after them. */
function bindingsWorker(options: GenerationOptions): WorkerOptions {
  return {
    name: BINDINGS_SERVICE,
    modulesRoot: MODULES_ROOT,
    modules: [{ type: "ESModule", path: `${MODULES_ROOT}${BINDINGS_MODULE}`, contents: BINDINGS_MODULE_SOURCE }],
    serviceBindings: { [HOST_PROTOCOL.hostBinding]: options.hostBridge as never },
  };
}

export function fingerprintOf(definition: WorkerDefinition): string {
  let fingerprint = fingerprints.get(definition);
  if (fingerprint === undefined) {
    fingerprint = createHash("sha256").update(JSON.stringify(definition)).digest("base64url");
    fingerprints.set(definition, fingerprint);
  }
  return fingerprint;
}

function workerOptions(service: string, definition: WorkerDefinition, options: GenerationOptions): WorkerOptions {
  const flags = definition.compatibilityFlags.some((flag) => ALS_FLAGS.includes(flag))
    ? definition.compatibilityFlags
    : [...definition.compatibilityFlags, "nodejs_als"];
  const platform = definition.platform ?? NO_PLATFORM_BINDINGS;
  const config: EntryConfig = {
    vars: definition.vars,
    secrets: definition.secrets,
    kv: definition.kv.map((kv) => kv.binding),
    sendEmail: definition.sendEmail.map((binding) => binding.name),
    native: [...platform.d1, ...platform.r2].map((binding) => binding.binding),
    analytics: platform.analytics.map((binding) => binding.binding),
    queues: platform.queues.map((binding) => binding.binding),
    ai: platform.ai.map((binding) => binding.binding),
    missing: platform.missing,
  };
  return {
    name: service,
    // rooted at "/", so stack traces name "file:///user.js", never the server's install path
    modulesRoot: MODULES_ROOT,
    modules: workerModules(definition.bundle, definition.modules).map((module) => ({ ...module, path: `${MODULES_ROOT}${module.path}` })),
    // miniflare's own D1 and R2 (SQLite and blob files), persisted per account under the data dir;
    // R2 from the store instead when the host serves it: workerd's R2 API, through the gateway
    d1Databases: Object.fromEntries(platform.d1.map((binding) => [binding.binding, binding.databaseId])),
    ...(options.r2Host === undefined ? { r2Buckets: Object.fromEntries(platform.r2.map((binding) => [binding.binding, binding.bucket])) } : { unsafeBindings: gatewayR2Bindings(platform.r2) }),
    // workerd refuses a date newer than its own build; wrangler falls back the same way
    compatibilityDate: definition.compatibilityDate > supportedCompatibilityDate ? supportedCompatibilityDate : definition.compatibilityDate,
    compatibilityFlags: flags,
    bindings: { [HOST_PROTOCOL.configBinding]: config as unknown as Record<string, never> },
    // the host is reachable only through the wrapped binding's internal module (entry-bindings.ts)
    wrappedBindings: { [HOST_PROTOCOL.bindingsBinding]: { scriptName: BINDINGS_SERVICE } },
    outboundService: { network: { allow: ["public", ...options.outboundAllow], tlsOptions: { trustBrowserCas: true } } },
  };
}

const BODY_CHUNK_BYTES = 64 * 1024;

/** `raw` as a (non-byte) stream of views into it: enqueued views are read, never transferred or copied. */
function bodyStream(raw: Buffer): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= raw.length) return controller.close();
      controller.enqueue(raw.subarray(offset, (offset += BODY_CHUNK_BYTES)));
    },
  });
}

/**
 * Where D1 and R2 keep their data: the account's storage folder in wrangler's --persist-to layout
 * (`<dir>/v3/d1`, `<dir>/v3/r2`), so `wrangler d1 execute --local --persist-to <dir>` and mailroute
 * read the same files; in memory when the definitions name no folder (deploy checks, tests).
 */
function persistence(workers: ReadonlyMap<string, DeployedWorker>, r2OnDisk: boolean): { defaultPersistRoot?: string; d1Persist?: boolean; r2Persist?: boolean } {
  const definitions = [...workers.values()].map((worker) => worker.definition);
  // only when a worker binds D1 or R2: persistence starts storage services a process otherwise skips
  const stores = definitions.some((definition) => (definition.platform?.d1.length ?? 0) + (r2OnDisk ? (definition.platform?.r2.length ?? 0) : 0) > 0);
  const dir = definitions.find((definition) => definition.storageDir !== undefined)?.storageDir;
  return dir === undefined || !stores ? {} : { defaultPersistRoot: join(dir, "v3"), d1Persist: true, r2Persist: true };
}

/** The useful part of Miniflare's start failure: workerd's own complaint about the user's module. */
export function startFailureText(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const stderr = message.split("Runtime stderr:")[1] ?? message;
  const lines = stderr
    .split("\n")
    .map((line) => line.replace(/^service core:user:[^:]*: /, "").trim())
    .filter((line) => line !== "" && !line.startsWith("stack:") && !line.startsWith("workerd/"));
  return lines.join("\n").slice(0, 2000) || "worker failed to start";
}

export class RuntimeGeneration {
  readonly workers: ReadonlyMap<string, DeployedWorker>;
  readonly ready: Promise<void>;
  inFlight = 0;
  readonly #options: GenerationOptions;
  readonly #services = new Map<string, string>();
  readonly #mf: Miniflare;
  #pid: number | null = null;
  #baselineRss = 0;
  #stopReason: string | null = null;
  #retired = false;
  #abandoned = 0;
  readonly #startedAt = performance.now();
  readonly #internalErrors = new InternalErrorLog();

  constructor(options: GenerationOptions) {
    this.#options = options;
    this.workers = new Map(options.workers);
    const workers = [...this.workers].map(([name, deployed], index) => {
      const service = `worker-${index}`;
      this.#services.set(name, service);
      return workerOptions(service, deployed.definition, options);
    });
    workers.push(bindingsWorker(options));
    const usesR2 = [...options.workers.values()].some((worker) => (worker.definition.platform?.r2.length ?? 0) > 0);
    if (options.r2Host !== undefined && usesR2) workers.push(r2GatewayWorker(options.r2Host));
    this.#mf = new Miniflare({ workers, ...persistence(options.workers, options.r2Host === undefined), handleRuntimeStdio: (stdout: Readable, stderr: Readable) => this.#drain(stdout, stderr) });
    this.ready = this.#start();
  }

  get pid(): number | null {
    return this.#pid;
  }

  /** Why the process was stopped (the text sibling invocations report), or null while it runs. */
  get stopReason(): string | null {
    return this.#stopReason;
  }

  serves(name: string, fingerprint: string): boolean {
    return this.#stopReason === null && !this.#retired && this.workers.get(name)?.fingerprint === fingerprint;
  }

  /** False once the process is gone, e.g. killed by its memory cap while idle. */
  alive(): boolean {
    if (this.#stopReason !== null) return false;
    if (this.#pid === null) return true;
    try {
      process.kill(this.#pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  async dispatch(record: InvocationRecord): Promise<EntryReport> {
    const { invocation, definition } = record;
    const handler = invocation.handler;
    const route = { "MF-Route-Override": this.#services.get(definition.name) ?? "", [h.invocation]: record.id };
    let response: Awaited<ReturnType<Miniflare["dispatchFetch"]>>;
    if (handler === undefined) {
      response = await this.#mf.dispatchFetch(`http://mailroute.invalid${HOST_PROTOCOL.invokePath}`, {
        method: "POST",
        // a stream of views: a Buffer body would be copied whole by fetch (up to 25 MiB more per invocation)
        body: bodyStream(invocation.raw),
        duplex: "half",
        headers: { ...route, [h.from]: encodeURIComponent(invocation.from), [h.to]: encodeURIComponent(invocation.to) },
      });
    } else if (handler.kind === "probe") {
      response = await this.#mf.dispatchFetch(`http://mailroute.invalid${HOST_PROTOCOL.probePath}`, { headers: route });
    } else if (handler.kind === "fetch") {
      const spec = { method: handler.method, url: handler.url, headers: handler.headers };
      response = await this.#mf.dispatchFetch(`http://mailroute.invalid${HOST_PROTOCOL.fetchPath}`, {
        method: "POST",
        body: handler.body ?? undefined,
        headers: { ...route, [h.handler]: encodeURIComponent(JSON.stringify(spec)) },
      });
    } else {
      response = await this.#mf.dispatchFetch(`http://mailroute.invalid${HOST_PROTOCOL.queuePath}`, {
        method: "POST",
        body: JSON.stringify({ queue: handler.queue, messages: handler.messages }),
        headers: route,
      });
    }
    if (!response.ok) {
      // our entry worker itself failed (it catches the user's errors): keep workerd's words
      const text = (await response.text()).slice(0, 500);
      record.note("error", `entry worker answered ${response.status}: ${text}`);
      return { error: "internal error", logs: [], logsDropped: 0 };
    }
    return (await response.json()) as EntryReport;
  }

  /**
   * Whether the process still answers within `withinMs`. workerd runs a process's isolates on one
   * thread, so an answer means no worker is stuck computing: one that only waits can be abandoned.
   */
  async responsive(withinMs: number): Promise<boolean> {
    const [service] = this.#services.values();
    try {
      const response = await this.#mf.dispatchFetch(`http://mailroute.invalid${HOST_PROTOCOL.pingPath}`, {
        headers: { "MF-Route-Override": service ?? "" },
        signal: AbortSignal.timeout(withinMs),
      });
      await response.arrayBuffer();
      return response.ok;
    } catch {
      return false;
    }
  }

  /** An invocation left running after its deadline; too many and the process is replaced. */
  abandon(): number {
    return ++this.#abandoned;
  }

  /** What workerd logged for an "internal error; reference = …" one of its workers got. */
  internalErrorReason(reference: string, withinMs: number): Promise<string | null> {
    return this.#internalErrors.reason(reference, withinMs);
  }

  async overMemoryBudget(): Promise<boolean> {
    const limit = this.#options.memoryLimitBytes;
    if (this.#pid === null || limit === null) return false;
    const memory = await readProcessMemory(this.#pid);
    return memory !== null && memory.rssBytes > this.#baselineRss + limit * RETIRE_AT_SHARE_OF_CAP;
  }

  /** No new invocations; the process stops once those in flight are done. */
  retire(reason: string): void {
    this.#retired = true;
    if (this.inFlight === 0) void this.stop(reason);
  }

  release(): void {
    if (this.#retired && this.inFlight === 0) void this.stop("replaced");
  }

  async stop(reason: string): Promise<void> {
    if (this.#stopReason !== null) return;
    this.#stopReason = reason;
    await this.#mf.dispose().catch(() => undefined);
    this.#options.onEvent({ event: "worker-runtime.stopped", account: this.#options.account, pid: this.#pid, reason });
  }

  async #start(): Promise<void> {
    const url = await this.#mf.ready;
    this.#pid = await findWorkerdByPort(Number(url.port));
    const { account, memoryLimitBytes, onEvent } = this.#options;
    let capped = false;
    if (this.#pid !== null && memoryLimitBytes !== null) {
      const memory = await readProcessMemory(this.#pid);
      if (memory !== null) {
        this.#baselineRss = memory.rssBytes;
        capped = await limitDataSegment(this.#pid, memory.dataBytes + memoryLimitBytes);
      }
    }
    if (memoryLimitBytes !== null && !capped) onEvent({ event: "worker-runtime.memory-cap-unavailable", account, pid: this.#pid });
    onEvent({
      event: "worker-runtime.started",
      account,
      pid: this.#pid,
      workers: [...this.workers.keys()],
      ms: Math.round(performance.now() - this.#startedAt),
      memoryCapped: capped,
    });
  }

  #drain(stdout: Readable, stderr: Readable): void {
    for (const [stream, name] of [[stdout, "stdout"], [stderr, "stderr"]] as const) {
      createInterface({ input: stream }).on("line", (line) => {
        if (name === "stderr") this.#internalErrors.line(line);
        // a stack line lists workerd's own addresses under the install path: nothing to report
        if (line.trim() === "" || line.startsWith("stack:")) return;
        this.#options.onEvent({ event: "worker-runtime.output", account: this.#options.account, stream: name, line: line.slice(0, 500) });
      });
    }
  }
}
