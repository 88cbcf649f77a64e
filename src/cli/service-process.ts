/**
 * One service process of `mailroute start --processes n` (a node:cluster worker): today's
 * startMailroute, under its own node id (`<node id>-p<slot>`), on the listening handles the
 * primary shares (SMTP and HTTP connections are dealt round-robin among the processes).
 *
 * Promises: it reports to the primary once — ready, or the start failure explained exactly as
 * a single process would explain it — and prints nothing to the terminal itself (no banner, no
 * token: the primary does both, once). It stops gracefully on SIGTERM/SIGINT and when the
 * primary goes away (IPC disconnect), so it never outlives its supervisor.
 */
import type { Logger } from "../analytics/structured-log.ts";
import { joinClusterMetrics } from "../analytics/cluster-metrics.ts";
import { processNodeId, resolveNodeId } from "../config/node-id.ts";
import type { Settings } from "../config/settings.ts";
import { CliError } from "./cli-error.ts";
import { startIdleMemoryRelease } from "./idle-memory-release.ts";
import type { ProcessMessage } from "./process-messages.ts";
import { explainStartFailure } from "./start-failure.ts";
import { startMailroute } from "./start-service.ts";

/** After a graceful stop, how long anything left (a stuck socket) may keep the process alive. */
const EXIT_GRACE_MS = 5_000;

export async function runServiceProcess(base: Readonly<Settings>, slot: number, logger: Logger): Promise<void> {
  const tell = (message: ProcessMessage) => new Promise<void>((resolve) => (process.send ? process.send(message, undefined, {}, () => resolve()) : resolve()));
  let settings: Readonly<Settings>;
  let service: Awaited<ReturnType<typeof startMailroute>>;
  try {
    // the primary created the node id file before forking: every process reads the same base
    settings = Object.freeze({ ...base, nodeId: processNodeId(resolveNodeId(base.nodeId, base.dataDir), slot), processes: 1 });
    joinClusterMetrics();
    service = await startMailroute(settings, { logger });
  } catch (error) {
    const explained = error instanceof CliError ? error : explainStartFailure(error, base);
    await tell({ type: "mailroute:start-failed", message: explained.message, hint: explained.hint, exitCode: explained.exitCode });
    process.exit(explained.exitCode);
  }
  await tell({ type: "mailroute:ready", nodeId: service.nodeId, smtp: service.smtp, http: service.http });
  // under the process's node id, as its other lines: the primary and every process release their own
  const memoryRelease = settings.releaseIdleMemory ? startIdleMemoryRelease(logger.child({ node_id: service.nodeId })) : null;
  await new Promise<void>((resolve) => {
    const stop = () => {
      memoryRelease?.stop();
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      process.off("disconnect", stop);
      void service.close().then(resolve);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    process.on("disconnect", stop);
  });
  // the IPC channel would keep the process alive after the service closed
  if (process.connected) process.disconnect();
  setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
}
