/**
 * `mailroute worker tail <name>`: prints a worker's recent console lines, then follows new ones
 * until Ctrl-C (or the caller's signal), polling the store every --interval.
 *
 * Promises: a burst is drained before the next sleep, so the output never lags behind.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { WorkerLogEntry } from "../../core/workers/worker-service.ts";
import { CliError } from "../cli-error.ts";
import { need, wholeNumber, withWorkerServices, type Context } from "./worker-cli-context.ts";

export async function tailCommand(context: Context): Promise<void> {
  const name = need(context, 1, "worker name");
  const lines = wholeNumber(context.values.lines, "--lines", 20, 0, 1000);
  const interval = wholeNumber(context.values.interval, "--interval", 1000, 50, 60_000);
  const stop = new AbortController();
  const onSigint = (): void => stop.abort();
  const forward = (): void => stop.abort();
  context.io.signal?.addEventListener("abort", forward, { once: true });
  if (context.io.signal?.aborted) stop.abort();
  process.once("SIGINT", onSigint);
  try {
    await withWorkerServices(context, async (services) => {
      if (!(await services.workers.deployedNames()).has(name.toLowerCase())) {
        throw new CliError(`no worker named "${name.toLowerCase()}" is deployed`, { hint: "mailroute worker list" });
      }
      const print = (entry: WorkerLogEntry): void => context.output.out(context.values.json ? JSON.stringify(entry) : `${entry.at}  ${entry.level.padEnd(5)}  ${entry.message}`);
      const recent = lines === 0 ? [] : await services.workers.logs(name, { limit: lines });
      recent.forEach(print);
      if (context.values.once === true) return;
      let last = recent.at(-1)?.id ?? (await services.workers.logs(name, { limit: 1 })).at(-1)?.id ?? 0;
      if (!context.values.json) context.output.out(`following ${name.toLowerCase()}'s logs; Ctrl-C to stop`);
      while (!stop.signal.aborted) {
        // Drain everything new before sleeping again: a burst never lags behind.
        for (;;) {
          const next = await services.workers.logs(name, { after: last, limit: 500 });
          next.forEach(print);
          last = next.at(-1)?.id ?? last;
          if (next.length < 500) break;
        }
        await sleep(interval, undefined, { signal: stop.signal }).catch(() => undefined);
      }
    });
  } finally {
    process.off("SIGINT", onSigint);
    context.io.signal?.removeEventListener("abort", forward);
  }
}

