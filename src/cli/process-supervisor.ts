/**
 * The primary of `mailroute start --processes n` (issue 11): forks n service processes with
 * node:cluster — each runs today's service on the same SMTP and HTTP ports (cluster's shared
 * listening handles, connections dealt round-robin) — and only supervises them.
 *
 * Promises:
 * - resolves `ready` once, when every process serves, with the first one's addresses;
 * - a start failure during the first start (busy port, bad certificate, store) stops the
 *   others and rejects with the same CliError a single process would have shown, once;
 * - a process that dies later is restarted in its slot (same node id, so it takes over its
 *   predecessor's queue claims), after a short backoff; MAX_START_FAILURES exits in a row
 *   before it serves again give up: everything stops and the promise rejects, saying why;
 * - SIGTERM/SIGINT stop every process gracefully (SIGTERM; SIGKILL after STOP_TIMEOUT_MS) and
 *   resolve once all are gone; /metrics requests from the processes are answered here with
 *   the sum over all of them (cluster-metrics.ts).
 */
import cluster, { type Worker } from "node:cluster";
import { join } from "node:path";
import { answerClusterMetrics } from "../analytics/cluster-metrics.ts";
import type { Logger } from "../analytics/structured-log.ts";
import { CliError } from "./cli-error.ts";
import { isProcessMessage, PROCESS_SLOT_ENV, type ProcessReady } from "./process-messages.ts";

export const MAX_START_FAILURES = 3;
const RESTART_BACKOFF_MS = 250;
const STOP_TIMEOUT_MS = 30_000;
const CLI_ENTRY = join(import.meta.dirname, "main.ts");

interface Slot {
  readonly number: number;
  worker: Worker | null;
  ready: boolean;
  /** Exits in a row before the process served. */
  failures: number;
  /** What the process said when it could not start, if it said it. */
  reported: CliError | null;
  restart: NodeJS.Timeout | null;
}

export interface SupervisorOptions {
  processes: number;
  /** The `mailroute start` arguments, given again to every process. */
  argv: readonly string[];
  logger: Logger;
  /** Called once, when all processes serve. */
  ready(first: ProcessReady): void;
}

export function superviseProcesses(options: SupervisorOptions): Promise<void> {
  const { logger } = options;
  // the CLI entry, not process.argv[1]: the same whoever called startCommand
  cluster.setupPrimary({ exec: CLI_ENTRY, args: ["start", ...options.argv] });
  const stopMetrics = answerClusterMetrics();
  const slots: Slot[] = Array.from({ length: options.processes }, (_, index) => ({ number: index + 1, worker: null, ready: false, failures: 0, reported: null, restart: null }));
  let phase: "starting" | "running" | "stopping" = "starting";
  let failure: CliError | null = null;
  let first: ProcessReady | null = null;

  return new Promise<void>((resolve, reject) => {
    let killTimer: NodeJS.Timeout | null = null;
    const live = () => slots.filter((slot) => slot.worker !== null && !slot.worker.isDead());
    const finish = () => {
      if (live().length > 0) return;
      if (killTimer !== null) clearTimeout(killTimer);
      process.off("SIGINT", stopAll);
      process.off("SIGTERM", stopAll);
      stopMetrics();
      if (failure !== null) reject(failure);
      else resolve();
    };
    function stopAll(): void {
      if (phase === "stopping") return;
      phase = "stopping";
      for (const slot of slots) if (slot.restart !== null) clearTimeout(slot.restart);
      for (const slot of live()) slot.worker!.process.kill("SIGTERM");
      killTimer = setTimeout(() => {
        for (const slot of live()) slot.worker!.process.kill("SIGKILL");
      }, STOP_TIMEOUT_MS);
      killTimer.unref();
      finish();
    }
    const giveUp = (error: CliError) => {
      failure ??= error;
      logger.log("error", "processes_stopping", { reason: error.message });
      stopAll();
    };

    const fork = (slot: Slot) => {
      slot.restart = null;
      slot.ready = false;
      slot.reported = null;
      const worker = cluster.fork({ [PROCESS_SLOT_ENV]: String(slot.number) });
      slot.worker = worker;
      const pid = worker.process.pid;
      logger.log("info", "process_started", { slot: slot.number, pid });
      worker.on("message", (message: unknown) => {
        if (!isProcessMessage(message)) return;
        if (message.type === "mailroute:start-failed") {
          slot.reported = new CliError(message.message, { exitCode: message.exitCode, ...(message.hint === null ? {} : { hint: message.hint }) });
          return;
        }
        slot.ready = true;
        slot.failures = 0;
        logger.log("info", "process_ready", { slot: slot.number, pid, process_node_id: message.nodeId });
        first ??= message;
        if (phase === "starting" && slots.every((each) => each.ready)) {
          phase = "running";
          options.ready(first);
        }
      });
      worker.on("exit", (code, signal) => {
        if (phase === "stopping") return finish();
        const how = signal === null ? `exit code ${code}` : `signal ${signal}`;
        if (!slot.ready) slot.failures++;
        slot.ready = false;
        // the first start reports a start failure at once, as a single process does
        if (slot.reported !== null && phase === "starting") return giveUp(slot.reported);
        if (slot.failures >= MAX_START_FAILURES) {
          return giveUp(slot.reported ?? new CliError(`service process ${slot.number} exited (${how}) ${slot.failures} times in a row before it could serve; giving up`, { hint: "the log lines above say why it stopped" }));
        }
        const delayMs = RESTART_BACKOFF_MS * 2 ** slot.failures;
        logger.log("error", "process_exited", { slot: slot.number, pid, exit: how, restart_in_ms: delayMs });
        slot.restart = setTimeout(() => fork(slot), delayMs);
      });
    };

    process.on("SIGINT", stopAll);
    process.on("SIGTERM", stopAll);
    for (const slot of slots) fork(slot);
  });
}
