/**
 * Health and readiness (issue 12): `GET /healthz` says whether each part of the running service
 * works — the SMTP listener, the store (a real query, bounded by a short timeout) and the Email
 * Worker runtime — and `GET /readyz` whether this instance should receive traffic now.
 *
 * Promises:
 * - /healthz answers 200 only when every check passes and 503 otherwise, naming the failing
 *   part; a check that hangs (a PostgreSQL behind a dead network path) counts as failed after
 *   `timeoutMs`, so the endpoint itself always answers within about that bound;
 * - /readyz answers 503 while the service is starting or stopping (`accepting()` false) or any
 *   check fails, 200 otherwise: a load balancer or orchestrator stops sending work before the
 *   SMTP listener closes;
 * - the bodies carry states and error codes, never credentials or stack traces (the store's
 *   error message may quote its URL; only the error code is reported).
 *
 * Worker runtimes start on the first message for an account and stop when idle, so "no
 * runtime running" is healthy. The workers check reports the runtime's own state, read without
 * starting or pinging a process: "ok" and "starting" pass; "degraded" (an account's process
 * crashed, ran past a deadline or failed a ping, and the next message restarts it) passes with
 * the reason, so one account's worker cannot take the instance out of service; "failed" (an
 * account's process cannot start) fails both endpoints.
 */
import type { FastifyInstance } from "fastify";

export type WorkerRuntimeHealthState = "ok" | "starting" | "degraded" | "failed";

export interface WorkerRuntimeState {
  account: string;
  pid: number | null;
  inFlight: number;
  state: WorkerRuntimeHealthState;
  /** A stable keyword for what went wrong ("crashed", "deadline", "unresponsive", "start-failed"). */
  reason?: string;
  detail?: string;
  since?: number;
}

export interface WorkerRuntimeHealth {
  state: WorkerRuntimeHealthState;
  accounts: readonly WorkerRuntimeState[];
}

export interface HealthChecks {
  /** Whether the SMTP server is listening. */
  smtpListening(): boolean;
  /** A real round trip to the store (resolves when it answered). */
  pingStore(): Promise<unknown>;
  /** The worker runtime's state and its accounts' (one process each, started on first use). */
  workerRuntime(): WorkerRuntimeHealth;
  /** False while starting up or shutting down. */
  accepting(): boolean;
  /** Bound on the store check; default 2 s. */
  timeoutMs?: number;
}

interface CheckResult {
  /** "degraded" is reported but does not fail the endpoint. */
  status: "ok" | "degraded" | "failing";
  [detail: string]: unknown;
}

export const DEFAULT_HEALTH_TIMEOUT_MS = 2_000;

/** The paths answered here: by the Fastify routes below, and by the HTTP front before the app is built (http-front.ts). */
export const HEALTH_PATHS = Object.freeze(["/healthz", "/readyz"] as const);
export type HealthPath = (typeof HEALTH_PATHS)[number];

/** The status code and JSON body of `path`'s answer, after running the checks. */
export async function healthAnswer(checks: HealthChecks, path: HealthPath): Promise<{ statusCode: number; body: unknown }> {
  const timeoutMs = checks.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
  // read before the checks run: a stop that begins while they run shows on the next probe
  const accepting = checks.accepting();
  const listening = checks.smtpListening();
  const results: Record<string, CheckResult> = {
    smtp: { status: listening ? "ok" : "failing", listening },
    store: await storeCheck(checks.pingStore, timeoutMs),
    workers: workersCheck(checks.workerRuntime()),
  };
  const failingChecks = Object.keys(results).filter((name) => results[name]!.status === "failing");
  const degraded = Object.keys(results).filter((name) => results[name]!.status === "degraded");
  if (path === "/healthz") {
    const status = failingChecks.length > 0 ? "failing" : degraded.length > 0 ? "degraded" : "ok";
    return { statusCode: failingChecks.length === 0 ? 200 : 503, body: { success: failingChecks.length === 0, result: { status, failing: failingChecks, degraded, checks: results } } };
  }
  const failing = [...(accepting ? [] : ["accepting"]), ...failingChecks];
  return {
    statusCode: failing.length === 0 ? 200 : 503,
    body: { success: failing.length === 0, result: { status: failing.length === 0 ? "ready" : "not_ready", failing, degraded, workers: results["workers"]!["state"] } },
  };
}

export async function healthRoutes(app: FastifyInstance, checks: HealthChecks): Promise<void> {
  for (const path of HEALTH_PATHS) {
    app.get(path, async (_request, reply) => {
      const { statusCode, body } = await healthAnswer(checks, path);
      return reply.code(statusCode).header("cache-control", "no-store").send(body);
    });
  }
}

function workersCheck(runtime: WorkerRuntimeHealth): CheckResult {
  return {
    status: runtime.state === "failed" ? "failing" : runtime.state === "degraded" ? "degraded" : "ok",
    state: runtime.state,
    running: runtime.accounts.some((account) => account.pid !== null),
    runtimes: runtime.accounts.map((account) => ({
      account: account.account,
      pid: account.pid,
      in_flight: account.inFlight,
      state: account.state,
      ...(account.reason === undefined ? {} : { reason: account.reason, detail: account.detail, since: account.since === undefined ? undefined : new Date(account.since).toISOString() }),
    })),
  };
}

async function storeCheck(ping: () => Promise<unknown>, timeoutMs: number): Promise<CheckResult> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ping(),
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })), timeoutMs);
      }),
    ]);
    return { status: "ok", latency_ms: Math.round(performance.now() - started) };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return { status: "failing", error: typeof code === "string" ? code : (error as Error).name ?? "error", latency_ms: Math.round(performance.now() - started) };
  } finally {
    clearTimeout(timer);
  }
}
