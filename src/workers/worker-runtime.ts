/**
 * WorkerRuntime: runs Cloudflare Email Workers, unmodified, on workerd (through Miniflare), with
 * our entry worker building the Runtime API's `message` and calling back into the host for
 * forward / reply / send_email / KV (see entry-worker.ts, host-bridge.ts).
 *
 * Promises (DESIGN §5: workerd is not a hardened sandbox):
 * - One workerd process per account, so a worker that hangs, crashes or exhausts its memory cap
 *   takes down at most its own account's invocations, never another account's.
 * - invoke() always settles by its deadline (default 30 s, as the SMTP answer must not wait
 *   longer); a timeout kills and later restarts that account's process.
 * - Outbound fetch() from workers cannot reach loopback, private or link-local addresses unless
 *   listed in `outboundAllow` (CIDRs, or workerd's names "private", "local").
 * - Each process may commit at most `memoryLimitMb` beyond its idle size (Linux: RLIMIT_DATA via
 *   prlimit; elsewhere the cap is reported unavailable through onEvent and not enforced).
 * - Redeploys take effect on the next invocation of that worker, without touching other accounts;
 *   an account idle for `idleMs` has its process stopped.
 * - health() reports each account's state (account-runtime.ts) from what is already known: it
 *   never starts a process to check one, so an idle service reads "ok" with no runtimes.
 */
import { AccountRuntime, type RuntimeHealth, type RuntimeHealthState } from "./account-runtime.ts";
import { RuntimeGeneration, startFailureText, fingerprintOf, type RuntimeEvent } from "./runtime-generation.ts";
import type { R2Buckets } from "./r2-types.ts";
import type { EmailInvocation, HostHandlers, InvocationResult, WorkerDefinition } from "./worker-types.ts";

export type { RuntimeEvent } from "./runtime-generation.ts";
export type { RuntimeHealth, RuntimeHealthState, RuntimeProblem } from "./account-runtime.ts";

export interface AccountRuntimeHealth extends RuntimeHealth {
  account: string;
  pid: number | null;
  inFlight: number;
}

// the runtime as a whole reads as its worst account: one failed account is a failure to report
const SEVERITY: Readonly<Record<RuntimeHealthState, number>> = { ok: 0, starting: 1, degraded: 2, failed: 3 };

export interface WorkerRuntimeOptions {
  /** Addresses worker fetch() may reach besides public ones, e.g. ["127.0.0.1/32"]. */
  outboundAllow?: readonly string[];
  /** Per-process memory beyond its idle size, in MiB; null disables the cap. Default 512. */
  memoryLimitMb?: number | null;
  /** How long a new process may take to load its workers' modules. Default 15 000 ms. */
  startTimeoutMs?: number;
  /** Stop an account's process after this long without invocations. Default 10 minutes. */
  idleMs?: number;
  /** One structured event per runtime happening: started, stopped, start-failed, output… */
  onEvent?: (event: RuntimeEvent) => void;
  /**
   * Each account's R2 buckets in the store (cluster mode: every node sees every object). Absent:
   * R2 bindings are miniflare's own, on disk in the account's storage folder.
   */
  r2?: (account: string) => R2Buckets;
}

export interface InvokeOptions {
  deadlineMs?: number;
}

export const DEFAULT_DEADLINE_MS = 30_000;

export class WorkerRuntime {
  readonly #options: Readonly<Required<Omit<WorkerRuntimeOptions, "memoryLimitMb" | "r2">> & { memoryLimitBytes: number | null }>;
  readonly #r2: WorkerRuntimeOptions["r2"];
  readonly #accounts = new Map<string, AccountRuntime>();
  readonly #sweeper: NodeJS.Timeout;
  #disposed = false;

  constructor(options: WorkerRuntimeOptions = {}) {
    const memoryLimitMb = options.memoryLimitMb === undefined ? 512 : options.memoryLimitMb;
    if (memoryLimitMb !== null && !(memoryLimitMb > 0)) throw new RangeError(`memoryLimitMb ${memoryLimitMb} is not a positive number`);
    this.#options = Object.freeze({
      outboundAllow: Object.freeze([...(options.outboundAllow ?? [])]),
      memoryLimitBytes: memoryLimitMb === null ? null : memoryLimitMb * 1024 * 1024,
      startTimeoutMs: options.startTimeoutMs ?? 15_000,
      idleMs: options.idleMs ?? 10 * 60_000,
      onEvent: options.onEvent ?? (() => undefined),
    });
    this.#r2 = options.r2;
    this.#sweeper = setInterval(() => this.#stopIdle(), Math.min(this.#options.idleMs, 60_000));
    this.#sweeper.unref();
  }

  /** Runs `definition`'s email() for one message; never rejects for anything the worker does. */
  async invoke(definition: WorkerDefinition, invocation: EmailInvocation, handlers: HostHandlers, options: InvokeOptions = {}): Promise<InvocationResult> {
    if (this.#disposed) throw new Error("WorkerRuntime is disposed");
    const deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    if (!(deadlineMs > 0)) throw new RangeError(`deadlineMs ${deadlineMs} is not a positive number`);
    let account = this.#accounts.get(definition.account);
    if (account === undefined) {
      const r2 = this.#r2?.(definition.account);
      account = new AccountRuntime({ account: definition.account, ...this.#options, ...(r2 === undefined ? {} : { r2 }) });
      this.#accounts.set(definition.account, account);
    }
    return account.invoke(definition, invocation, handlers, deadlineMs);
  }

  /**
   * Loads `definition` in a throwaway process and reports whether its modules start: a deploy can
   * refuse a bundle workerd would not run, with workerd's own words.
   */
  async check(definition: WorkerDefinition): Promise<{ ok: true } | { ok: false; error: string }> {
    const generation = new RuntimeGeneration({
      account: definition.account,
      workers: new Map([[definition.name, { definition, fingerprint: fingerprintOf(definition) }]]),
      hostBridge: async () => new Response(null, { status: 410 }),
      outboundAllow: [],
      memoryLimitBytes: null,
      onEvent: () => undefined,
    });
    let timeout: NodeJS.Timeout | undefined;
    try {
      const started = await Promise.race([
        generation.ready.then(() => true),
        new Promise<false>((resolve) => (timeout = setTimeout(() => resolve(false), this.#options.startTimeoutMs))),
      ]);
      return started ? { ok: true } : { ok: false, error: `worker did not start within ${this.#options.startTimeoutMs} ms (module-level code still running)` };
    } catch (error) {
      return { ok: false, error: startFailureText(error) };
    } finally {
      clearTimeout(timeout);
      await generation.stop("checked");
    }
  }

  /** The workerd process serving each account (null while none runs). */
  processes(): { account: string; pid: number | null; inFlight: number }[] {
    return [...this.#accounts].map(([account, runtime]) => ({ account, pid: runtime.pid, inFlight: runtime.inFlight }));
  }

  /** Each account's state and the worst of them; no account running or failed is "ok". */
  health(): { state: RuntimeHealthState; accounts: AccountRuntimeHealth[] } {
    const accounts = [...this.#accounts].map(([account, runtime]) => ({ account, pid: runtime.pid, inFlight: runtime.inFlight, ...runtime.health() }));
    const state = accounts.reduce<RuntimeHealthState>((worst, account) => (SEVERITY[account.state] > SEVERITY[worst] ? account.state : worst), "ok");
    return { state, accounts };
  }

  async dispose(): Promise<void> {
    this.#disposed = true;
    clearInterval(this.#sweeper);
    const accounts = [...this.#accounts.values()];
    this.#accounts.clear();
    await Promise.all(accounts.map((account) => account.stop("runtime disposed")));
  }

  #stopIdle(): void {
    const now = Date.now();
    for (const [name, account] of this.#accounts) {
      if (account.inFlight > 0 || now - account.lastUsed < this.#options.idleMs) continue;
      this.#accounts.delete(name);
      void account.stop("idle");
    }
  }
}
