/**
 * The SMTP load scenarios:
 * - throughput: N concurrent sessions sending fixed-size messages to one target (the sink
 *   directly, or mailroute relaying to it), after an unmeasured warm-up, with RSS sampled;
 * - light-load latency: one session per target, messages one at a time, targets and sizes
 *   interleaved round by round, so the machine's noise (2 shared cores) falls on both the
 *   mailroute and the sink-alone figures alike and their difference is what mailroute adds.
 *
 * Promises: every loop is bounded in count and time (the limits are arguments); figures are
 * returned, never judged.
 */
import { performance } from "node:perf_hooks";
import type { FastSink } from "./fast-sink.ts";
import { summarizeLatency, type LatencySummary } from "./latency-stats.ts";
import { ENVELOPE } from "./loopback-environment.ts";
import { fixedSizeMessages, type MessageFactory } from "./message-source.ts";
import type { RssSampler, RssWindowResult } from "./rss-sampler.ts";
import { LoadSession } from "./smtp-load-client.ts";
import { runLoad, type LoadResult } from "./smtp-load.ts";

export type Target = "sink" | "mailroute";

export interface LoadLimits {
  maxMessages: number;
  maxSeconds: number;
}

export interface ThroughputOptions {
  target: Target;
  port: number;
  sizeBytes: number;
  concurrency: number;
  messagesPerSession: number;
  warmup: LoadLimits;
  limits: LoadLimits;
  sink: FastSink;
  benchRss: RssSampler;
  /** Absent when the target is the sink (mailroute is not involved). */
  serverRss: RssSampler | null;
}

export interface ThroughputFigures {
  target: Target;
  sizeBytes: number;
  concurrency: number;
  messagesPerSession: number;
  load: Omit<LoadResult, "latencyMs">;
  latency: LatencySummary;
  /** Messages and connections the sink saw during the measured phase. */
  sinkMessages: number;
  sinkConnections: number;
  serverRss: RssWindowResult | null;
  benchRss: RssWindowResult;
}

export async function measureThroughput(options: ThroughputOptions): Promise<ThroughputFigures> {
  const messages = fixedSizeMessages(options.sizeBytes, ENVELOPE.to);
  const load = (limits: LoadLimits, factory: MessageFactory) =>
    runLoad({
      host: "127.0.0.1",
      port: options.port,
      concurrency: options.concurrency,
      messagesPerSession: options.messagesPerSession,
      ...limits,
      messages: factory,
      envelope: ENVELOPE,
    });
  // warm-up: JIT, the outbound connection pool and SQLite's page cache reach steady state first
  await load(options.warmup, messages);
  const sinkBefore = { messages: options.sink.messages, connections: options.sink.connections };
  const benchWindow = options.benchRss.begin();
  const serverWindow = options.serverRss?.begin() ?? null;
  const { latencyMs, ...result } = await load(options.limits, messages);
  return {
    target: options.target,
    sizeBytes: options.sizeBytes,
    concurrency: options.concurrency,
    messagesPerSession: options.messagesPerSession,
    load: result,
    latency: summarizeLatency(latencyMs),
    sinkMessages: options.sink.messages - sinkBefore.messages,
    sinkConnections: options.sink.connections - sinkBefore.connections,
    serverRss: serverWindow?.end() ?? null,
    benchRss: benchWindow.end(),
  };
}

export interface LightLatencyOptions {
  ports: Record<Target, number>;
  sizes: readonly number[];
  rounds: number;
  messagesPerRound: number;
  maxSeconds: number;
}

export interface LightLatencyFigures {
  sizeBytes: number;
  sink: LatencySummary;
  mailroute: LatencySummary;
  failures: number;
  firstError: string | null;
}

export async function measureLightLatency(options: LightLatencyOptions): Promise<LightLatencyFigures[]> {
  const deadline = performance.now() + options.maxSeconds * 1000;
  const targets: Target[] = ["sink", "mailroute"];
  const sessions = new Map<Target, LoadSession>();
  const samples = new Map<string, number[]>();
  const failures = new Map<number, number>();
  const firstErrors = new Map<number, string>();
  const factories = new Map(options.sizes.map((size) => [size, fixedSizeMessages(size, ENVELOPE.to)]));

  async function sendOne(target: Target, size: number): Promise<void> {
    try {
      let session = sessions.get(target);
      if (session === undefined || !session.usable) {
        session = await LoadSession.open({ host: "127.0.0.1", port: options.ports[target] });
        sessions.set(target, session);
      }
      const result = await session.send(ENVELOPE, factories.get(size)!.next());
      if (result.ok) return void samples.get(`${target}:${size}`)!.push(result.ms);
      throw new Error(`refused: ${result.reply.line}`);
    } catch (error) {
      failures.set(size, (failures.get(size) ?? 0) + 1);
      if (!firstErrors.has(size)) firstErrors.set(size, `${target}: ${(error as Error).message}`);
    }
  }

  for (const size of options.sizes) for (const target of targets) samples.set(`${target}:${size}`, []);
  try {
    for (let round = 0; round < options.rounds && performance.now() < deadline; round++) {
      for (const size of options.sizes) {
        // alternate which target goes first, so neither always runs right after a GC of the other
        for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
          for (let i = 0; i < options.messagesPerRound && performance.now() < deadline; i++) await sendOne(target, size);
        }
      }
    }
  } finally {
    await Promise.all([...sessions.values()].map((session) => session.quit().catch(() => session.destroy())));
  }
  return options.sizes.map((size) => ({
    sizeBytes: size,
    sink: summarizeLatency(samples.get(`sink:${size}`)!),
    mailroute: summarizeLatency(samples.get(`mailroute:${size}`)!),
    failures: failures.get(size) ?? 0,
    firstError: firstErrors.get(size) ?? null,
  }));
}
