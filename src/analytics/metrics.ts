/**
 * The Prometheus metrics of the process (prom-client), served by api/metrics-routes.ts.
 *
 * Promises: labels carry only bounded, non-personal values (actions, outcomes, reply codes,
 * worker outcomes, error kinds) — never an address, subject, host name or message id, so
 * a scrape leaks no mail data and the series count stays small.
 * Why one registry per process: the SMTP side, the worker step and the HTTP side are
 * separate modules that all feed the same scrape; the registry is not the default one so
 * nothing a library registers globally appears in it.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export const metricsRegistry = new Registry();

export const messagesTotal = new Counter({
  name: "mailroute_messages_total",
  help: "Messages per recipient by routing action and outcome (the activity log's vocabulary).",
  labelNames: ["action", "outcome"] as const,
  registers: [metricsRegistry],
});

export const smtpRepliesTotal = new Counter({
  name: "mailroute_smtp_replies_total",
  help: "Final replies to RCPT TO refusals and to DATA, by SMTP reply code.",
  labelNames: ["code"] as const,
  registers: [metricsRegistry],
});

export const workerInvocationsTotal = new Counter({
  name: "mailroute_worker_invocations_total",
  help: "Email Worker invocations by outcome.",
  labelNames: ["outcome"] as const,
  registers: [metricsRegistry],
});

export const relayDurationSeconds = new Histogram({
  name: "mailroute_relay_duration_seconds",
  help: "Time to relay one message to its destination chains, in session.",
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [metricsRegistry],
});

export const workerDurationSeconds = new Histogram({
  name: "mailroute_worker_duration_seconds",
  help: "Time one Email Worker invocation took.",
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [metricsRegistry],
});

export const smtpSessionsOpen = new Gauge({
  name: "mailroute_smtp_sessions_open",
  help: "Inbound SMTP sessions open now.",
  registers: [metricsRegistry],
});

export const dnsErrorsTotal = new Counter({
  name: "mailroute_dns_errors_total",
  help: "DNS queries that failed on every server (timeouts, SERVFAIL, REFUSED), by record type and error code; a definite \"no such record\" is not an error.",
  labelNames: ["type", "code"] as const,
  registers: [metricsRegistry],
});

export const dnsblErrorsTotal = new Counter({
  name: "mailroute_dnsbl_errors_total",
  help: "DNS block-list queries that failed (no answer or an error, not a listing).",
  registers: [metricsRegistry],
});

export const queueRetriesTotal = new Counter({
  name: "mailroute_queue_retries_total",
  help: "Retry attempts of queued messages (queue delivery mode), by the relay's outcome.",
  labelNames: ["outcome"] as const,
  registers: [metricsRegistry],
});

/** The queue's depth and oldest entry are read from the store; start-service registers how. */
let queueStatsReader: () => Promise<{ depth: number; oldest: string | null }> = async () => ({ depth: 0, oldest: null });
export function reportQueueStats(read: () => Promise<{ depth: number; oldest: string | null }>): void {
  queueStatsReader = read;
}
new Gauge({
  name: "mailroute_queue_messages",
  help: "Messages waiting in the durable queue (all nodes).",
  registers: [metricsRegistry],
  // read from the shared store: every process reports the same count, so summing would multiply it
  aggregator: "max",
  async collect() {
    this.set((await queueStatsReader()).depth);
  },
});
new Gauge({
  name: "mailroute_queue_oldest_age_seconds",
  help: "Age of the oldest message in the durable queue, 0 when empty.",
  registers: [metricsRegistry],
  aggregator: "max",
  async collect() {
    const { oldest } = await queueStatsReader();
    this.set(oldest === null ? 0 : Math.max(0, (Date.now() - new Date(oldest).getTime()) / 1000));
  },
});

/** Pool connections are owned by the SMTP client pool; it registers how to read them. */
let poolConnections: () => number = () => 0;
export function reportPoolConnections(read: () => number): void {
  poolConnections = read;
}
new Gauge({
  name: "mailroute_pool_connections",
  help: "Outbound SMTP connections held open by the client pool.",
  registers: [metricsRegistry],
  collect() {
    this.set(poolConnections());
  },
});

/** A reply code as a label: only three digits, anything else "other", so labels stay bounded. */
export function replyCodeLabel(code: number): string {
  return Number.isInteger(code) && code >= 200 && code <= 599 ? String(code) : "other";
}
