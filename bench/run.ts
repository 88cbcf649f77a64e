/**
 * `npm run bench`: mailroute's benchmark suite. Runs every scenario in sequence and prints
 * figures — never pass/fail, never thresholds — as one table per scenario on stdout, and the
 * same figures as JSON in bench/results/latest.json (progress notes go to stderr).
 *
 *   1. throughput: 50 concurrent sessions, 1 KiB and 100 KiB, sink alone vs through mailroute
 *   2. added latency: one session, messages one at a time, mailroute minus sink alone
 *   3. one 25 MiB message: server RSS before, peak during, after
 *   4. routing lookup: resolveRecipient over 10 vs 100,000 rules (is the lookup indexed?)
 *
 * Everything runs on 127.0.0.1; every loop is bounded in count and time, and the whole run
 * takes about two minutes on a 2-core machine. `npm run bench -- --quick` shortens every
 * time bound for a smoke run (its figures are noisier). `npm run bench -- --postfix` runs the
 * side-by-side comparison with Postfix instead (side-by-side.ts; installs Postfix if missing).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { join } from "node:path";
import { latencyDifference, type LatencySummary } from "./latency-stats.ts";
import { measureLargeMessage, SIZE_LIMIT, type LargeMessageFigures } from "./large-message.ts";
import { measureLightLatency, measureThroughput, type LightLatencyFigures, type ThroughputFigures } from "./load-scenarios.ts";
import { ENVELOPE, SERVER_HOSTNAME, startLoopbackEnvironment, type LoopbackEnvironment } from "./loopback-environment.ts";
import { fixedSizeMessages } from "./message-source.ts";
import { REPO_ROOT, startChildServer, startInProcessServer, type BenchServer, type ServerMode } from "./mailroute-server.ts";
import { fixed, formatTable, mib, mibDelta, ms, msDelta, sizeLabel } from "./report-table.ts";
import { runRoutingLookup, type RoutingLookupResult } from "./routing-lookup.ts";
import { RssSampler, selfRss } from "./rss-sampler.ts";
import { LoadSession } from "./smtp-load-client.ts";

const QUICK = process.argv.includes("--quick");
// --quick divides every time bound (and count bound) by this
const SCALE = QUICK ? 5 : 1;
const CONCURRENCY = 50;
const MESSAGES_PER_SESSION = 20;
const RSS_INTERVAL_MS = 50;
// The sink alone is fast and steady, so it needs less time than mailroute for stable figures.
const THROUGHPUT = [
  { sizeBytes: 1024, sink: { maxMessages: 100_000, maxSeconds: 10 }, mailroute: { maxMessages: 40_000, maxSeconds: 20 } },
  { sizeBytes: 100 * 1024, sink: { maxMessages: 20_000, maxSeconds: 10 }, mailroute: { maxMessages: 10_000, maxSeconds: 20 } },
] as const;
const SIZES = THROUGHPUT.map((scenario) => scenario.sizeBytes);
const WARMUP = { maxMessages: 1_000, maxSeconds: 2 };
const LATENCY = { rounds: 6, messagesPerRound: 50, maxSeconds: 40 };

function scaled(limits: { maxMessages: number; maxSeconds: number }) {
  return { maxMessages: Math.ceil(limits.maxMessages / SCALE), maxSeconds: limits.maxSeconds / SCALE };
}

function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

// ── mailroute under test ───────────────────────────────────────────────────

interface ServerChoice {
  mode: ServerMode | null;
  description: string | null;
  fallbackReason: string | null;
}

/**
 * A fresh mailroute (own data dir, empty SQLite) per scenario, so each scenario's RSS and the
 * delivery ledger start from the same place. The child-process mode is tried first; if it
 * cannot start or cannot relay one message, the rest of the run uses in-process mode.
 */
async function startServer(env: LoopbackEnvironment, choice: ServerChoice): Promise<BenchServer> {
  const settings = { dataDir: await env.newDataDir(), dnsAddress: env.dns.address, sinkPort: env.sink.port, hostname: SERVER_HOSTNAME };
  if (choice.mode !== "in-process") {
    let server: BenchServer | null = null;
    try {
      server = await startChildServer(settings);
      await probeRelay(server.port, env);
      choice.mode = "child";
      choice.description = server.description.replace(/ \(pid \d+\)/, "");
      return server;
    } catch (error) {
      await server?.stop();
      if (choice.mode === "child") throw error;
      choice.fallbackReason = (error as Error).message;
      progress(`child process unavailable, running mailroute in-process: ${choice.fallbackReason}`);
    }
  }
  const server = await startInProcessServer(settings);
  await probeRelay(server.port, env).catch(async (error: unknown) => {
    await server.stop();
    throw error;
  });
  choice.mode = "in-process";
  choice.description = server.description;
  return server;
}

/** One message end to end before measuring: a broken setup must fail loudly, not report 0 msg/s. */
async function probeRelay(port: number, env: LoopbackEnvironment): Promise<void> {
  const before = env.sink.messages;
  const session = await LoadSession.open({ host: "127.0.0.1", port, timeoutMs: 20_000 });
  try {
    const result = await session.send(ENVELOPE, fixedSizeMessages(1024, ENVELOPE.to).next());
    if (!result.ok) throw new Error(`probe message refused: ${result.reply.line}`);
    if (env.sink.messages <= before) throw new Error("probe message was accepted but never reached the sink");
  } finally {
    await session.quit().catch(() => session.destroy());
  }
}

async function withServer<T>(env: LoopbackEnvironment, choice: ServerChoice, work: (server: BenchServer, rss: RssSampler) => Promise<T>): Promise<T> {
  const server = await startServer(env, choice);
  const rss = new RssSampler(server.rss, RSS_INTERVAL_MS);
  try {
    return await work(server, rss);
  } finally {
    rss.stop();
    await server.stop();
  }
}

// ── reports ────────────────────────────────────────────────────────────────

function routingTable(result: RoutingLookupResult): string {
  const rows = [result.small, result.largeSameAddresses, result.largeSpread];
  return formatTable(
    "Routing resolution (resolveRecipient, in the bench process)",
    [{ title: "table", align: "left" }, { title: "rules hit" }, { title: "build ms" }, { title: "lookups/s (median)" }, { title: "vs 10 rules" }],
    rows.map((row) => [row.label, row.distinctRulesHit, row.buildMs, row.opsPerSecond, (row.opsPerSecond / result.small.opsPerSecond).toFixed(2)]),
    [
      "vs 10 rules: 1.00 = the rule count does not matter; a linear scan of 100,000 rules would be ~0.0001.",
      "spread lookups touch thousands of entries, so they also pay CPU-cache misses the 10-rule table never does.",
      result.queryMix,
    ],
  );
}

function throughputTable(rows: readonly ThroughputFigures[], serverNote: string): string {
  return formatTable(
    `Throughput: ${CONCURRENCY} concurrent sessions, ${MESSAGES_PER_SESSION} messages per session`,
    [
      { title: "size", align: "left" },
      { title: "target", align: "left" },
      { title: "delivered" },
      { title: "errors" },
      { title: "s" },
      { title: "msg/s" },
      { title: "MiB/s" },
      { title: "p50 ms" },
      { title: "p99 ms" },
      { title: "sink conns" },
      { title: "server peak RSS" },
      { title: "bench peak RSS" },
      { title: "stopped by", align: "left" },
    ],
    rows.map((row) => [
      sizeLabel(row.sizeBytes),
      row.target === "sink" ? "sink alone" : "mailroute → sink",
      row.load.delivered,
      row.load.refused + row.load.sessionFailures,
      row.load.elapsedSeconds,
      row.load.messagesPerSecond,
      row.load.bytesPerSecond / 1048576,
      ms(row.latency.p50Ms),
      ms(row.latency.p99Ms),
      row.sinkConnections,
      mib(row.serverRss?.peakBytes ?? null),
      mib(row.benchRss.peakBytes),
      row.load.stoppedBy,
    ]),
    [
      serverNote,
      "sink conns: connections the sink accepted during the run (for mailroute: its outbound pool's connections).",
      "bench RSS: this process — load generator, sink and DNS server.",
      ...rows.filter((row) => row.load.firstError !== null).map((row) => `${sizeLabel(row.sizeBytes)} ${row.target}: first error: ${row.load.firstError}`),
    ],
  );
}

interface AddedLatencyRow {
  label: string;
  sizeBytes: number;
  sink: LatencySummary;
  mailroute: LatencySummary;
}

function latencyTable(rows: readonly AddedLatencyRow[], light: readonly LightLatencyFigures[]): string {
  const body = rows.flatMap((row) => {
    const diff = latencyDifference(row.mailroute, row.sink);
    const line = (target: string, summary: LatencySummary) => [row.label, sizeLabel(row.sizeBytes), target, summary.count, ms(summary.p50Ms), ms(summary.p90Ms), ms(summary.p99Ms), ms(summary.maxMs)];
    return [line("sink alone", row.sink), line("mailroute → sink", row.mailroute), [row.label, sizeLabel(row.sizeBytes), "added by mailroute", null, msDelta(diff.p50Ms), msDelta(diff.p90Ms), msDelta(diff.p99Ms), null]];
  });
  return formatTable(
    "Latency per message (MAIL FROM to final reply, ms), same run",
    [{ title: "load", align: "left" }, { title: "size", align: "left" }, { title: "target", align: "left" }, { title: "n" }, { title: "p50" }, { title: "p90" }, { title: "p99" }, { title: "max" }],
    body,
    [
      "1 session: one message at a time, targets interleaved round by round — the time mailroute itself adds.",
      `${CONCURRENCY} sessions: from the throughput runs — includes queueing, so it mostly restates the msg/s difference.`,
      ...light.filter((row) => row.failures > 0).map((row) => `${sizeLabel(row.sizeBytes)}: ${row.failures} failed (${row.firstError})`),
    ],
  );
}

function largeMessageTable(figures: LargeMessageFigures, serverNote: string): string {
  const row = (who: string, points: LargeMessageFigures["server"]) => [
    who,
    mib(points.beforeBytes),
    mib(points.peakBytes),
    mib(points.afterBytes),
    mibDelta(points.beforeBytes, points.peakBytes),
    mibDelta(points.beforeBytes, points.afterBytes),
  ];
  return formatTable(
    `One message of ${figures.sizeBytes.toLocaleString("en-US")} bytes (the 25 MiB limit minus ${SIZE_LIMIT - figures.sizeBytes} bytes) through mailroute`,
    [{ title: "process", align: "left" }, { title: "RSS before" }, { title: "peak during" }, { title: "after" }, { title: "growth at peak" }, { title: "growth after" }],
    [row("mailroute server", figures.server), row("bench (client + sink)", figures.bench)],
    [
      `reply: ${figures.reply}`,
      `${fixed(figures.seconds)} s, ${fixed(figures.mibPerSecond)} MiB/s; sink received ${figures.sinkBytes.toLocaleString("en-US")} bytes (message + trace header)`,
      serverNote,
    ],
  );
}

// ── the run ────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const started = new Date();
  const header = [
    `mailroute bench — ${started.toISOString()}${QUICK ? " (--quick: time bounds ÷5, noisier)" : ""}`,
    `node ${process.version}, ${process.platform}/${process.arch}, ${availableParallelism()} CPUs (${cpus()[0]?.model.trim() ?? "unknown"})`,
    "",
  ].join("\n");
  process.stdout.write(`${header}\n`);

  const benchRss = new RssSampler(selfRss(), RSS_INTERVAL_MS);
  const env = await startLoopbackEnvironment();
  const choice: ServerChoice = { mode: null, description: null, fallbackReason: null };
  const throughput: ThroughputFigures[] = [];
  let light: LightLatencyFigures[] = [];
  let large: LargeMessageFigures | null = null;
  try {
    for (const scenario of THROUGHPUT) {
      const size = scenario.sizeBytes;
      const common = { sizeBytes: size, concurrency: CONCURRENCY, messagesPerSession: MESSAGES_PER_SESSION, warmup: scaled(WARMUP), sink: env.sink, benchRss };
      progress(`throughput ${sizeLabel(size)}: sink alone`);
      throughput.push(await measureThroughput({ ...common, target: "sink", port: env.sink.port, limits: scaled(scenario.sink), serverRss: null }));
      progress(`throughput ${sizeLabel(size)}: through mailroute`);
      throughput.push(
        await withServer(env, choice, (server, serverRss) => measureThroughput({ ...common, target: "mailroute", port: server.port, limits: scaled(scenario.mailroute), serverRss })),
      );
    }
    const serverNote = `server: ${choice.description}${choice.fallbackReason === null ? "" : ` (child process failed: ${choice.fallbackReason})`}`;
    process.stdout.write(`${throughputTable(throughput, serverNote)}\n`);

    progress("latency, one session, interleaved");
    light = await withServer(env, choice, (server) =>
      measureLightLatency({
        ports: { sink: env.sink.port, mailroute: server.port },
        sizes: SIZES,
        rounds: LATENCY.rounds,
        messagesPerRound: Math.ceil(LATENCY.messagesPerRound / SCALE),
        maxSeconds: LATENCY.maxSeconds / SCALE,
      }),
    );
    const latencyRows: AddedLatencyRow[] = [
      ...light.map((row) => ({ label: "1 session", sizeBytes: row.sizeBytes, sink: row.sink, mailroute: row.mailroute })),
      ...SIZES.map((size) => {
        const of = (target: ThroughputFigures["target"]) => throughput.find((row) => row.sizeBytes === size && row.target === target)!.latency;
        return { label: `${CONCURRENCY} sessions`, sizeBytes: size, sink: of("sink"), mailroute: of("mailroute") };
      }),
    ];
    process.stdout.write(`${latencyTable(latencyRows, light)}\n`);

    progress("one 25 MiB message");
    large = await withServer(env, choice, (server, serverRss) => measureLargeMessage({ port: server.port, sink: env.sink, serverRss, benchRss }));
    process.stdout.write(`${largeMessageTable(large, serverNote)}\n`);

    // last: its 100,000-rule tables grow this process's heap, which would inflate the bench RSS
    // figures above; it needs no servers, only a CPU
    progress("routing lookup micro-benchmark");
    const routing = runRoutingLookup({ roundMs: QUICK ? 100 : 300 });
    process.stdout.write(`${routingTable(routing)}\n`);

    const resultsDir = join(REPO_ROOT, "bench", "results");
    mkdirSync(resultsDir, { recursive: true });
    const jsonPath = join(resultsDir, "latest.json");
    const report = {
      generatedAt: started.toISOString(),
      quick: QUICK,
      node: process.version,
      platform: `${process.platform}/${process.arch}`,
      cpus: availableParallelism(),
      server: choice,
      routingLookup: routing,
      throughput,
      latency: latencyRows.map((row) => ({ ...row, added: latencyDifference(row.mailroute, row.sink) })),
      largeMessage: large,
    };
    writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`JSON: ${jsonPath}\n`);
  } finally {
    benchRss.stop();
    await env.close();
  }
}

// `--postfix`: the side-by-side comparison with Postfix instead (side-by-side.ts)
const entry = process.argv.includes("--postfix") ? () => import("./side-by-side.ts").then((module) => module.runSideBySide()) : main;
entry().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
