/**
 * /metrics across the processes of `mailroute start --processes n` (issue 11): whichever
 * process serves the scrape asks the primary over the cluster's IPC channel, the primary
 * collects every process's registry with prom-client's AggregatorRegistry and answers with the
 * sum (counters and histograms summed; store-wide gauges use their own aggregator, metrics.ts).
 *
 * Promises: a process that is not a cluster worker answers from its own registry, exactly as
 * before; a cluster worker never answers with its own share alone (that would undercount
 * silently): when the primary does not answer within METRICS_IPC_TIMEOUT_MS it throws.
 */
import cluster, { type Worker } from "node:cluster";
import { AggregatorRegistry } from "prom-client";
import { metricsRegistry } from "./metrics.ts";

const REQUEST = "mailroute:metrics-request";
const RESPONSE = "mailroute:metrics-response";
/** prom-client's own collection timeout is 5 s; the primary's answer comes after it. */
export const METRICS_IPC_TIMEOUT_MS = 7_000;

interface MetricsRequest { type: typeof REQUEST; id: number }
interface MetricsResponse { type: typeof RESPONSE; id: number; text?: string; error?: string }

let serving = false;
let nextId = 0;
const pending = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();

/** In a service process: answer the primary's collection requests, and route scrapes to it. */
export function joinClusterMetrics(): void {
  if (serving || !cluster.isWorker) return;
  serving = true;
  AggregatorRegistry.setRegistries([metricsRegistry]);
  // constructing one installs prom-client's worker-side listener (collection requests)
  new AggregatorRegistry();
  process.on("message", (message: unknown) => {
    if (!isMessage<MetricsResponse>(message, RESPONSE)) return;
    const request = pending.get(message.id);
    if (request === undefined) return;
    pending.delete(message.id);
    clearTimeout(request.timer);
    if (message.error !== undefined || message.text === undefined) request.reject(new Error(`metrics from the other processes: ${message.error ?? "no answer"}`));
    else request.resolve(message.text);
  });
}

/** The exposition a scrape of this process returns: every process's sum under a cluster. */
export async function metricsExposition(): Promise<{ type: string; text: string }> {
  if (!serving || process.send === undefined) return { type: metricsRegistry.contentType, text: await metricsRegistry.metrics() };
  const id = nextId++;
  const text = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`metrics from the other processes: no answer from the primary within ${METRICS_IPC_TIMEOUT_MS} ms`));
    }, METRICS_IPC_TIMEOUT_MS);
    pending.set(id, { resolve, reject, timer });
    process.send!({ type: REQUEST, id } satisfies MetricsRequest);
  });
  return { type: metricsRegistry.contentType, text };
}

/** In the primary: answer every service process's scrape with the sum over all of them. Returns a stop function. */
export function answerClusterMetrics(): () => void {
  const aggregator = new AggregatorRegistry();
  const onMessage = (worker: Worker, message: unknown) => {
    if (!isMessage<MetricsRequest>(message, REQUEST)) return;
    const reply = (response: MetricsResponse) => {
      if (worker.isConnected()) worker.send(response);
    };
    aggregator.clusterMetrics().then(
      (text) => reply({ type: RESPONSE, id: message.id, text }),
      (error: unknown) => reply({ type: RESPONSE, id: message.id, error: error instanceof Error ? error.message : String(error) }),
    );
  };
  cluster.on("message", onMessage);
  return () => cluster.off("message", onMessage);
}

function isMessage<T extends { type: string }>(message: unknown, type: T["type"]): message is T {
  return typeof message === "object" && message !== null && (message as { type?: unknown }).type === type;
}
