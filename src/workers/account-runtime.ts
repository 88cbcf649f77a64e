/**
 * One account's Email Workers: the workerd process (generation) currently serving them, the
 * invocations in flight, and the rules for replacing the process.
 *
 * Promises:
 * - Every invocation ends by its deadline with the result "timeout", and the account's process is
 *   retired at once: the next invocation starts a fresh one instead of queueing behind a worker
 *   that may be stuck computing. If the old process then does not answer a ping within
 *   PING_WITHIN_MS, it is killed (its other invocations in flight get an error saying why);
 *   if it answers, they finish there and it stops.
 *   Invocations of other accounts never wait on this one: nothing here is shared between accounts.
 * - A redeploy (new fingerprint) starts a new process with the account's other workers beside
 *   the new version; invocations already running finish on the old process, which then stops.
 *   Starts are serialised per account, so two deploys cannot blame each other's failures.
 * - A definition whose process does not start (syntax error, throwing or looping module code) is
 *   refused with workerd's complaint for RETRY_FAILED_START_MS, while the account's other
 *   workers keep running on the process they have.
 * - Module state persists between invocations of the same worker version: they share a process
 *   until it is replaced, restarted after a timeout or crash, retired for memory, or idle.
 * - A worker that got workerd's opaque "internal error; reference = …" (a fetch() the network
 *   policy refused, a failed DNS lookup) finds the reason workerd logged for it in its logs
 *   (worker tail, activity log), and in its error text when it threw it.
 * - health() tells what happened to the account's process without starting or pinging one (a
 *   signal-0 probe of its pid at most): "starting" while the first process loads; "degraded" with
 *   the reason after a crash, a deadline retirement, a failed ping or one worker's failed start;
 *   "failed" when the last start failed and no process serves the account. The next process that
 *   starts clears it (mail for the account restarts one), so a recovered account reads "ok".
 */
import { createHostBridge } from "./host-bridge.ts";
import type { R2Buckets } from "./r2-types.ts";
import { createR2Wire } from "./r2-wire.ts";
import { internalErrorReferences } from "./internal-error-log.ts";
import { InvocationRecord } from "./invocation-record.ts";
import { fingerprintOf, RuntimeGeneration, startFailureText, type DeployedWorker, type RuntimeEvent } from "./runtime-generation.ts";
import type { EmailInvocation, HostHandlers, InvocationResult, WorkerDefinition } from "./worker-types.ts";

export interface AccountRuntimeOptions {
  account: string;
  /** The account's R2 in the store (cluster mode); absent: miniflare's R2 on disk. */
  r2?: R2Buckets;
  outboundAllow: readonly string[];
  memoryLimitBytes: number | null;
  startTimeoutMs: number;
  onEvent: (event: RuntimeEvent) => void;
}

/**
 * What an account's runtime reports to /healthz. `reason` is a stable keyword and `detail` a fixed
 * sentence: never workerd's own words, which can quote the worker's source, as /healthz is public.
 */
export type RuntimeHealthState = "ok" | "starting" | "degraded" | "failed";
export type RuntimeProblem = "crashed" | "deadline" | "unresponsive" | "start-failed";
export interface RuntimeHealth {
  state: RuntimeHealthState;
  reason?: RuntimeProblem;
  detail?: string;
  /** When the problem was seen (ms since the epoch). */
  since?: number;
}

const PROBLEM_DETAIL: Readonly<Record<RuntimeProblem, string>> = {
  crashed: "the worker runtime process exited unexpectedly (crash, kill or memory limit); the next message starts a new one",
  deadline: "an invocation ran past its deadline; the process was retired and the next message starts a new one",
  unresponsive: "the process did not answer a ping after an invocation ran past its deadline and was killed",
  "start-failed": "a worker's process failed to start (see the worker-runtime.start-failed log event)",
};

function report(state: RuntimeHealthState, reason: RuntimeProblem, since: number): RuntimeHealth {
  return { state, reason, detail: PROBLEM_DETAIL[reason], since };
}

const CRASHED = "worker runtime exited unexpectedly (crash or memory limit)";
const RETRY_FAILED_START_MS = 60_000;
const PING_WITHIN_MS = 1000;
// each abandoned invocation holds its request (and message) until the process goes
const MAX_ABANDONED = 10;
// workerd writes the reason before the worker sees the error, but through another pipe
const REASON_WITHIN_MS = 250;
const MAX_EXPLAINED = 20;

function timer(ms: number): { promise: Promise<"deadline">; clear(): void } {
  let handle: NodeJS.Timeout | undefined;
  const promise = new Promise<"deadline">((resolve) => {
    handle = setTimeout(() => resolve("deadline"), ms);
  });
  return { promise, clear: () => clearTimeout(handle) };
}

/**
 * Adds what workerd logged for each "internal error; reference = …" in `result` (its error, its
 * reject reason, its logs) to its logs and error. Bounded: at most MAX_EXPLAINED references (a
 * worker can print any text), looked up together, so the whole wait is one REASON_WITHIN_MS.
 */
async function explainInternalErrors(generation: RuntimeGeneration, result: InvocationResult): Promise<InvocationResult> {
  const references = internalErrorReferences([result.error ?? "", result.rejectReason ?? "", ...result.logs.map((log) => log.message)].join("\n")).slice(0, MAX_EXPLAINED);
  if (references.length === 0) return result;
  const reasons = await Promise.all(references.map((reference) => generation.internalErrorReason(reference, REASON_WITHIN_MS)));
  const logs = [...result.logs];
  let error = result.error;
  references.forEach((reference, index) => {
    const reason = reasons[index];
    if (reason === null || reason === undefined) return;
    logs.push({ level: "error", message: `mailroute: internal error ${reference}: ${reason}`, at: Date.now() });
    if (error?.includes(reference)) error = `${error} (${reason})`;
  });
  return { ...result, logs, ...(error === undefined ? {} : { error }) };
}

export class AccountRuntime {
  readonly #options: AccountRuntimeOptions;
  readonly #records = new Map<string, InvocationRecord>();
  readonly #bridge = createHostBridge(this.#records);
  readonly #r2Host: ((request: Request) => Promise<Response>) | undefined;
  readonly #generations = new Set<RuntimeGeneration>();
  #current: RuntimeGeneration | undefined;
  /** The workers of the last process that started, to carry over into the next one. */
  #known: ReadonlyMap<string, DeployedWorker> = new Map();
  readonly #failedStarts = new Map<string, { fingerprint: string; error: string; at: number }>();
  #startChain: Promise<void> = Promise.resolve();
  #starting = 0;
  /** The last thing that went wrong with a process of this account, until another one serves it. */
  #problem: { reason: RuntimeProblem; at: number; generation: RuntimeGeneration } | null = null;
  #lastUsed = Date.now();

  constructor(options: AccountRuntimeOptions) {
    this.#options = options;
    // the store's failure text (it may name the database) goes to the operator's log, not the worker
    const onFailure = (error: string) => options.onEvent({ event: "worker-runtime.r2-failed", account: options.account, error });
    this.#r2Host = options.r2 === undefined ? undefined : createR2Wire(options.r2, onFailure);
  }

  get inFlight(): number {
    return this.#records.size;
  }

  get lastUsed(): number {
    return this.#lastUsed;
  }

  /** The process serving the account now (for stats and tests). */
  get pid(): number | null {
    return this.#current?.pid ?? null;
  }

  /** The account's state from what is known already: never starts, pings or waits on a process. */
  health(): RuntimeHealth {
    const current = this.#current;
    // killed while idle (SIGKILL, the OOM killer): nothing else notices before the next message
    if (current !== undefined && !current.alive() && this.#problem?.generation !== current) this.#noteProblem("crashed", current);
    // a problem belongs to the process it happened to: another one serving now means recovered
    if (this.#problem !== null && current !== undefined && current !== this.#problem.generation) this.#problem = null;
    let failedStartAt: number | null = null;
    for (const failed of this.#failedStarts.values()) failedStartAt = Math.max(failedStartAt ?? 0, failed.at);
    if (failedStartAt !== null && current === undefined) return this.#starting > 0 ? { state: "starting" } : report("failed", "start-failed", failedStartAt);
    if (this.#problem !== null) return report("degraded", this.#problem.reason, this.#problem.at);
    // a process serves the account's other workers; the one that failed is refused until fixed
    if (failedStartAt !== null) return report("degraded", "start-failed", failedStartAt);
    return current === undefined && this.#starting > 0 ? { state: "starting" } : { state: "ok" };
  }

  #noteProblem(reason: RuntimeProblem, generation: RuntimeGeneration): void {
    // seen twice (by health() and by the next message): keep when it was first seen
    if (this.#problem?.generation === generation && this.#problem.reason === reason) return;
    this.#problem = { reason, at: Date.now(), generation };
  }

  async invoke(definition: WorkerDefinition, invocation: EmailInvocation, handlers: HostHandlers, deadlineMs: number): Promise<InvocationResult> {
    this.#pruneStopped();
    const record = new InvocationRecord(definition, invocation, handlers);
    this.#records.set(record.id, record);
    const deadline = timer(deadlineMs);
    let generation: RuntimeGeneration | undefined;
    try {
      const acquired = await Promise.race([this.#acquire(definition, fingerprintOf(definition)), deadline.promise]);
      if (acquired === "deadline") return record.fail("timeout", `worker did not start within ${deadlineMs} ms`);
      if (typeof acquired === "string") return record.fail("error", acquired);
      generation = acquired;
      generation.inFlight++;
      const settled = await Promise.race([
        generation.dispatch(record).then((report) => ({ report }), (error: unknown) => ({ error })),
        deadline.promise,
      ]);
      if (settled === "deadline") {
        // New mail must not queue behind a worker that may be stuck computing (workerd runs an
        // account's isolates on one thread): later invocations start a fresh process at once.
        this.#retire(generation, "an invocation ran past its deadline");
        this.#noteProblem("deadline", generation);
        void this.#afterDeadline(generation);
        return record.fail("timeout", `worker did not finish within ${deadlineMs} ms`);
      }
      if ("error" in settled) {
        const reason = generation.stopReason ?? CRASHED;
        // stopped by us (a deadline elsewhere) is already noted; stopped by itself is a crash
        if (generation.stopReason === null) this.#noteProblem("crashed", generation);
        this.#discard(generation, reason);
        return record.fail("error", reason);
      }
      const result = await explainInternalErrors(generation, record.finish(settled.report));
      if (await generation.overMemoryBudget()) this.#retire(generation, "memory use near its cap");
      return result;
    } finally {
      deadline.clear();
      this.#records.delete(record.id);
      this.#lastUsed = Date.now();
      if (generation !== undefined) {
        generation.inFlight--;
        generation.release();
      }
    }
  }

  // a worker stuck computing blocks its whole process and can only be stopped by killing it (and
  // its neighbours' invocations with it); one merely waiting (a webhook that never answers) is
  // abandoned: its later host calls are refused, as its record is gone
  async #afterDeadline(generation: RuntimeGeneration): Promise<void> {
    if (await generation.responsive(PING_WITHIN_MS)) {
      if (generation.abandon() > MAX_ABANDONED) this.#retire(generation, "too many abandoned invocations");
      return;
    }
    this.#noteProblem("unresponsive", generation);
    this.#discard(generation, "worker runtime restarted: another invocation of this account ran past its deadline");
  }

  async stop(reason: string): Promise<void> {
    this.#current = undefined;
    await Promise.all([...this.#generations].map((generation) => generation.stop(reason)));
    this.#generations.clear();
  }

  async #acquire(definition: WorkerDefinition, fingerprint: string): Promise<RuntimeGeneration | string> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const failed = this.#failedStarts.get(definition.name);
      if (failed?.fingerprint === fingerprint && Date.now() - failed.at < RETRY_FAILED_START_MS) return failed.error;
      const current = this.#current;
      if (current !== undefined && !current.alive()) {
        this.#noteProblem("crashed", current);
        this.#discard(current, CRASHED);
      } else if (current?.serves(definition.name, fingerprint)) return current;
      const start = this.#startChain.then(() => this.#replace(definition, fingerprint));
      this.#startChain = start.catch(() => undefined);
      await start;
    }
    return "worker runtime could not start";
  }

  async #replace(definition: WorkerDefinition, fingerprint: string): Promise<void> {
    // another invocation's start, queued before ours, may already have done it
    if (this.#current?.serves(definition.name, fingerprint) && this.#current.alive()) return;
    if (this.#failedStarts.get(definition.name)?.fingerprint === fingerprint) return;
    const workers = new Map(this.#known);
    workers.set(definition.name, { definition, fingerprint });
    const generation = new RuntimeGeneration({
      account: this.#options.account,
      workers,
      hostBridge: this.#bridge,
      outboundAllow: this.#options.outboundAllow,
      memoryLimitBytes: this.#options.memoryLimitBytes,
      onEvent: this.#options.onEvent,
      ...(this.#r2Host === undefined ? {} : { r2Host: this.#r2Host }),
    });
    this.#generations.add(generation);
    const startTimeout = timer(this.#options.startTimeoutMs);
    let error: string | undefined;
    this.#starting++;
    try {
      const started = await Promise.race([generation.ready.then(() => "ready" as const), startTimeout.promise]);
      if (started === "deadline") error = `worker did not start within ${this.#options.startTimeoutMs} ms (module-level code still running)`;
    } catch (failure) {
      error = startFailureText(failure);
    } finally {
      startTimeout.clear();
      this.#starting--;
    }
    if (error !== undefined) {
      // the set without this definition was running (or empty), so the newcomer is to blame
      this.#failedStarts.set(definition.name, { fingerprint, error, at: Date.now() });
      this.#options.onEvent({ event: "worker-runtime.start-failed", account: this.#options.account, worker: definition.name, error });
      this.#forget(generation, "failed to start");
      return;
    }
    this.#failedStarts.delete(definition.name);
    const previous = this.#current;
    this.#current = generation;
    this.#known = generation.workers;
    if (previous !== undefined) this.#retire(previous, "replaced");
  }

  #retire(generation: RuntimeGeneration, reason: string): void {
    if (this.#current === generation) this.#current = undefined;
    generation.retire(reason);
  }

  #discard(generation: RuntimeGeneration, reason: string): void {
    if (this.#current === generation) this.#current = undefined;
    this.#forget(generation, reason);
  }

  #forget(generation: RuntimeGeneration, reason: string): void {
    void generation.stop(reason).then(() => this.#generations.delete(generation));
  }

  #pruneStopped(): void {
    for (const generation of this.#generations) if (generation.stopReason !== null) this.#generations.delete(generation);
  }
}
