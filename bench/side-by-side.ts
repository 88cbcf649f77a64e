/**
 * `npm run bench -- --postfix`: mailroute side by side with Postfix on this machine (issue 11).
 *
 * Both forward `user@bench.test` to `inbox@sink.test`, driven by Postfix's smtp-source and
 * drained into Postfix's smtp-sink, on 127.0.0.1 only:
 * - mailroute: the operator's command (`node src/cli/main.ts start`, child process, log level
 *   info as shipped, output discarded), full pipeline: SPF/DKIM/DMARC/ARC checks against a
 *   loopback DNS server publishing the sender's SPF and DMARC records, DKIM signature, ARC
 *   seal, delivery ledger, activity log; delivery through MX lookup (cached) to the sink;
 * - Postfix: a private instance installed from Debian's archive, a plain virtual-alias
 *   forwarder with its default fsync'd queue and per-message logging (postfix-forwarder.ts).
 *   Postfix answers 250 once the message is queued and delivers afterwards, mailroute only once
 *   the sink accepted it; a run therefore ends when the sink has received every message
 *   accepted, for both: msg/s is delivered messages per second, queue drained.
 *
 * Cells (sessions × message size) run interleaved — ours, Postfix, Postfix, ours, … — three
 * times each, and the median is reported with the ratio mailroute ÷ Postfix. A second zone,
 * `own.test`, opts out of signing (zones.sign_outbound = 0, migration 0006) and is routed with
 * --transport: the "forward to one's own server" case. Latency: one session, 1 KiB, one message
 * at a time, targets interleaved round by round (MAIL FROM to final reply).
 *
 * `--processes 1,2` (or MAILROUTE_BENCH_PROCESSES=1,2) runs mailroute once per process count
 * (`mailroute start --processes n`, each on its own data directory), all interleaved with
 * Postfix in the same run; peak RSS is then the sum over the primary and its processes.
 * `--one-thread` adds a mailroute with `--signing-threads 0 --store-writer-thread false` (the
 * node for a small machine), measured in the same run.
 * `--cells 0,1,2` keeps only those cells (indexes into CELLS), for a shorter run.
 * Last, routing at scale (routing-scale.ts): start-up and lookup times with 1 M custom addresses
 * (`--routing-rules N`, 0 skips it).
 *
 * Bounded: every smtp-source run has a message count and a time bound, every drain a time
 * bound; `--quick` runs one repetition with a third of the messages. Never part of npm test.
 */
import { availableParallelism, cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { sql } from "kysely";
import { CLI_OPERATOR } from "../src/core/service-context.ts";
import { createServices } from "../src/core/services.ts";
import { openStore } from "../src/store/open-store.ts";
import { startDnsServer, type TestDnsServer } from "../test/support/dns-server.ts";
import { summarizeLatency, type LatencySummary } from "./latency-stats.ts";
import { freePort, startChildServer, type BenchServer } from "./mailroute-server.ts";
import { fixedSizeMessages } from "./message-source.ts";
import { ensurePostfixInstalled, startPostfixForwarder, type PostfixForwarder } from "./postfix-forwarder.ts";
import { runSmtpSource, startPostfixSink, type PostfixSink } from "./postfix-load-tools.ts";
import { fixed, formatTable, mib, ms } from "./report-table.ts";
import { measureRoutingScale } from "./routing-scale.ts";
import { RssSampler, type RssReader } from "./rss-sampler.ts";
import { LoadSession } from "./smtp-load-client.ts";
import { THREAD_KINDS, cpuBetween, machineBusyBetween, readMachineCpu, readThreadCpu, type ThreadCpu, type ThreadKind } from "./thread-cpu.ts";

const QUICK = process.argv.includes("--quick");
const REPEATS = QUICK ? 1 : 3;
const SENDER = "sender@origin.test";
const SIGNED = { to: "user@bench.test", destination: "inbox@sink.test" };
const UNSIGNED = { to: "user@own.test", destination: "inbox@relay.test" };
const DRAIN_TIMEOUT_MS = 120_000;

/** The value after `--name` on the command line, else the environment's, else the default. */
function option(name: string, env: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return (at >= 0 ? process.argv[at + 1] : undefined) ?? process.env[env] ?? fallback;
}
const PROCESS_COUNTS = option("processes", "MAILROUTE_BENCH_PROCESSES", "1").split(",").map((text) => Number(text.trim()));
if (PROCESS_COUNTS.some((count) => !Number.isInteger(count) || count < 1 || count > 64)) throw new Error("--processes: a list of process counts such as 1,2");
/** A mailroute target's name: "mailroute" for one process (as before), "mailroute ×n" otherwise. */
const mailrouteName = (processes: number) => (processes === 1 ? "mailroute" : `mailroute ×${processes}`);
/**
 * `--one-thread` (MAILROUTE_BENCH_ONE_THREAD=1) adds the node for a small machine beside the
 * default one: `--signing-threads 0 --store-writer-thread false`, everything on the SMTP thread
 * but the key operations (libuv's pool): its memory and its throughput in the same run.
 */
const ONE_THREAD = process.argv.includes("--one-thread") || process.env.MAILROUTE_BENCH_ONE_THREAD === "1";
interface MailrouteVariant {
  name: string;
  /** Its data directory's name under the bench's. */
  dir: string;
  flags: Readonly<Record<string, string>>;
}
const MAILROUTE_VARIANTS: readonly MailrouteVariant[] = [
  ...PROCESS_COUNTS.map((processes): MailrouteVariant => ({ name: mailrouteName(processes), dir: `p${processes}`, flags: processes > 1 ? { processes: String(processes) } : {} })),
  ...(ONE_THREAD ? [{ name: "mailroute (one thread)", dir: "one-thread", flags: { "signing-threads": "0", "store-writer-thread": "false" } }] : []),
];
const MAILROUTE_TARGETS = MAILROUTE_VARIANTS.map((variant) => variant.name);

interface Cell {
  label: string;
  bodyBytes: number;
  sessions: number;
  messages: number;
  maxSeconds: number;
  route: typeof SIGNED;
}

const KIB = 1024;
const ALL_CELLS: readonly Cell[] = [
  { label: "1 KiB, 10 sessions", bodyBytes: KIB, sessions: 10, messages: 3000, maxSeconds: 15, route: SIGNED },
  { label: "1 KiB, 50 sessions", bodyBytes: KIB, sessions: 50, messages: 4000, maxSeconds: 15, route: SIGNED },
  { label: "100 KiB, 10 sessions", bodyBytes: 100 * KIB, sessions: 10, messages: 2000, maxSeconds: 15, route: SIGNED },
  { label: "10 MiB, 4 sessions", bodyBytes: 10 * KIB * KIB, sessions: 4, messages: 40, maxSeconds: 30, route: SIGNED },
  { label: "1 KiB, 10 sessions, zone without signing", bodyBytes: KIB, sessions: 10, messages: 3000, maxSeconds: 15, route: UNSIGNED },
  { label: "1 KiB, 50 sessions, zone without signing", bodyBytes: KIB, sessions: 50, messages: 4000, maxSeconds: 15, route: UNSIGNED },
];
const CELL_PICK = option("cells", "MAILROUTE_BENCH_CELLS", "");
const CELLS: readonly Cell[] = CELL_PICK === "" ? ALL_CELLS : CELL_PICK.split(",").map((index) => {
  const cell = ALL_CELLS[Number(index)];
  if (cell === undefined) throw new Error(`--cells: no cell ${index} (0 to ${ALL_CELLS.length - 1})`);
  return cell;
});
const LATENCY = { rounds: QUICK ? 2 : 6, messagesPerRound: 50, maxSeconds: 90 };
// issue 11's routing target is stated for 1 M custom addresses
const ROUTING_RULES = Number(option("routing-rules", "MAILROUTE_BENCH_ROUTING_RULES", QUICK ? "100000" : "1000000"));
if (!Number.isInteger(ROUTING_RULES) || ROUTING_RULES < 0) throw new Error("--routing-rules: a whole number of rules (0 skips the routing measurement)");

type TargetName = string;

interface Target {
  name: TargetName;
  port: number;
  rss: RssSampler;
  /** mailroute: the anonymous part of its RSS (no file-backed pages); null for Postfix. */
  anonRss: RssSampler | null;
  /** Messages accepted but not yet delivered (Postfix's queue; 0 for in-session relay). */
  queued(): number;
  /** mailroute: its CPU so far by kind of thread (thread-cpu.ts); null for Postfix or where it cannot be read. */
  cpu(): ThreadCpu | null;
}

interface RunFigures {
  delivered: number;
  seconds: number;
  msgPerSecond: number;
  peakRssBytes: number | null;
  peakAnonRssBytes: number | null;
  /** mailroute: CPU used during the run by kind of thread, ms; null for Postfix. */
  cpu: ThreadCpu | null;
  /** The share of the machine's cores busy during the run (every process: load, sink, forwarder). */
  machineBusy: number | null;
  problem: string | null;
}

function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

async function measureRun(target: Target, sink: PostfixSink, cell: Cell, messages: number): Promise<RunFigures> {
  const before = sink.messages;
  const window = target.rss.begin();
  const anonWindow = target.anonRss?.begin() ?? null;
  const cpuBefore = target.cpu();
  const machineBefore = readMachineCpu();
  const started = performance.now();
  const source = await runSmtpSource({
    port: target.port,
    sessions: cell.sessions,
    messages,
    bodyBytes: cell.bodyBytes,
    from: SENDER,
    to: cell.route.to,
    maxSeconds: cell.maxSeconds,
  });
  let problem: string | null = source.exit === 0 ? null : source.exit === "killed" ? null : `smtp-source exit ${source.exit}: ${source.output.split("\n").at(-1)}`;
  if (source.exit === 0) {
    // every message was accepted: the run ends when the last one reaches the sink
    if (!(await sink.waitFor(before + messages, DRAIN_TIMEOUT_MS))) problem ??= `only ${sink.messages - before} of ${messages} reached the sink`;
  } else {
    // cut short: whatever was accepted still has to be delivered before the clock stops
    const deadline = performance.now() + DRAIN_TIMEOUT_MS;
    while (target.queued() > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = target.cpu();
  const machineBusy = machineBusyBetween(machineBefore, readMachineCpu());
  const rss = window.end();
  const anonRss = anonWindow?.end() ?? null;
  const delivered = sink.messages - before;
  const cpu = cpuBefore === null || cpuAfter === null ? null : cpuBetween(cpuBefore, cpuAfter);
  return { delivered, seconds, msgPerSecond: delivered / seconds, peakRssBytes: rss.peakBytes, peakAnonRssBytes: anonRss?.peakBytes ?? null, cpu, machineBusy, problem };
}

/** The item at the lower middle of `items` ordered by `key` (the median of an odd count); null for none. */
function lowerMiddle<T>(items: readonly T[], key: (item: T) => number): T | null {
  if (items.length === 0) return null;
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function median(values: readonly number[]): number | null {
  return lowerMiddle(values, (value) => value);
}

/** The run whose rate is the median one, so the other figures shown from it belong together. */
function medianRun(runs: readonly RunFigures[]): RunFigures | null {
  return lowerMiddle(runs, (run) => run.msgPerSecond);
}

const percent = (share: number) => `${Math.round(share * 100)} %`;

function maxOf(values: readonly (number | null)[]): number | null {
  const present = values.filter((value): value is number => value !== null);
  return present.length === 0 ? null : Math.max(...present);
}

async function configureDataDir(dataDir: string): Promise<{ signingOptOut: boolean }> {
  const store = await openStore({ dataDir });
  try {
    const config = createServices(store).forAccount({ account: "default", actor: CLI_OPERATOR });
    for (const route of [SIGNED, UNSIGNED]) {
      await config.zones.create(route.to.slice(route.to.indexOf("@") + 1));
      await config.addresses.create(route.destination, { verified: true });
      await config.rules.create({ matchers: [{ type: "literal", field: "to", value: route.to }], actions: [{ type: "forward", value: [route.destination] }] });
    }
    // the per-zone opt-out (migration 0006); the bench also runs against builds without it
    try {
      await sql`update zones set sign_outbound = 0 where name = 'own.test'`.execute(store.db);
      return { signingOptOut: true };
    } catch {
      return { signingOptOut: false };
    }
  } finally {
    await store.close();
  }
}

function publishRecords(dns: TestDnsServer): void {
  dns.setRecords("sink.test", "MX", [{ exchange: "mx.sink.test", priority: 10 }]);
  dns.setRecords("mx.sink.test", "A", ["127.0.0.1"]);
  // the sender authenticates: SPF passes for the loopback client, DMARC is published
  dns.setRecords("origin.test", "TXT", ["v=spf1 ip4:127.0.0.0/8 -all"]);
  dns.setRecords("_dmarc.origin.test", "TXT", ["v=DMARC1; p=reject"]);
  dns.setRecords("client.origin.test", "A", ["127.0.0.1"]);
}

async function measureLatency(ports: Record<string, number>): Promise<Map<string, LatencySummary>> {
  const deadline = performance.now() + LATENCY.maxSeconds * 1000;
  const names = Object.keys(ports);
  const samples = new Map(names.map((name) => [name, [] as number[]]));
  const sessions = new Map<string, LoadSession>();
  const routes: Record<string, string> = { "mailroute (no signing)": UNSIGNED.to };
  try {
    for (let round = 0; round < LATENCY.rounds && performance.now() < deadline; round++) {
      for (const name of round % 2 === 0 ? names : [...names].reverse()) {
        const to = routes[name] ?? SIGNED.to;
        const factory = fixedSizeMessages(KIB, to);
        for (let i = 0; i < LATENCY.messagesPerRound && performance.now() < deadline; i++) {
          let session = sessions.get(name);
          if (session === undefined || !session.usable) {
            session = await LoadSession.open({ host: "127.0.0.1", port: ports[name]!, timeoutMs: 30_000 });
            sessions.set(name, session);
          }
          const result = await session.send({ from: SENDER, to }, factory.next());
          if (result.ok) samples.get(name)!.push(result.ms);
        }
      }
    }
  } finally {
    await Promise.all([...sessions.values()].map((session) => session.quit().catch(() => session.destroy())));
  }
  return new Map(names.map((name) => [name, summarizeLatency(samples.get(name)!)]));
}

export async function runSideBySide(): Promise<void> {
  const started = new Date();
  ensurePostfixInstalled(progress);
  // TTL 300 s, as real zones publish (most use 300–3600): a resolver that caches may use it
  const dns = await startDnsServer({ ttl: 300 });
  publishRecords(dns);
  const sink = await startPostfixSink(await freePort());
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dataDir = mkdtempSync(join(tmpdir(), "mailroute-bench-sbs-"));
  const servers: BenchServer[] = [];
  let postfix: PostfixForwarder | null = null;
  const samplers: RssSampler[] = [];
  try {
    let signingOptOut = false;
    for (const variant of MAILROUTE_VARIANTS) {
      // one data directory per mailroute: two services on one SQLite file would share its writes
      const own = join(dataDir, variant.dir);
      ({ signingOptOut } = await configureDataDir(own));
      servers.push(
        await startChildServer({
          dataDir: own,
          dnsAddress: dns.address,
          sinkPort: sink.port,
          hostname: "mx.mailroute.test",
          extraFlags: { "log-level": "info", transport: `relay.test=127.0.0.1:${sink.port}`, ...variant.flags },
        }),
      );
    }
    postfix = await startPostfixForwarder({
      port: await freePort(),
      sinkPort: sink.port,
      aliases: [
        { from: SIGNED.to, to: SIGNED.destination },
        { from: UNSIGNED.to, to: UNSIGNED.destination },
      ],
    });
    const sampler = (read: RssReader) => {
      const made = new RssSampler(read, 50);
      samplers.push(made);
      return made;
    };
    const targets: Record<TargetName, Target> = {
      ...Object.fromEntries(
        MAILROUTE_TARGETS.map((name, index) => {
          const server = servers[index]!;
          const cpu = () => (server.pid === null ? null : readThreadCpu(server.pid));
          return [name, { name, port: server.port, rss: sampler(server.rss), anonRss: server.anonRss === null ? null : sampler(server.anonRss), queued: () => 0, cpu }];
        }),
      ),
      postfix: { name: "postfix", port: postfix.port, rss: sampler(postfix.rss), anonRss: null, queued: () => postfix!.queued(), cpu: () => null },
    };
    const names = [...MAILROUTE_TARGETS, "postfix"];
    const header = [
      `mailroute vs Postfix ${postfix.version} — ${started.toISOString()}${QUICK ? " (--quick: 1 repetition, ⅓ of the messages)" : ""}`,
      `node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model.trim() ?? "unknown"}); load: smtp-source, sink: smtp-sink (Postfix's)`,
      "",
    ].join("\n");
    process.stdout.write(`${header}\n`);

    progress("warm-up");
    for (const target of Object.values(targets)) {
      await measureRun(target, sink, { ...CELLS[0]!, messages: 300, maxSeconds: 20 }, 300);
    }

    const results = new Map<Cell, Record<TargetName, RunFigures[]>>(CELLS.map((cell) => [cell, Object.fromEntries(names.map((name) => [name, [] as RunFigures[]]))]));
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      for (const [index, cell] of CELLS.entries()) {
        // alternate who goes first, so neither always runs right after the other's drain
        const shift = (repeat + index) % names.length;
        const order: TargetName[] = [...names.slice(shift), ...names.slice(0, shift)];
        for (const name of order) {
          const messages = QUICK ? Math.ceil(cell.messages / 3) : cell.messages;
          progress(`${cell.label}: ${name} (${repeat + 1}/${REPEATS})`);
          const figures = await measureRun(targets[name]!, sink, cell, messages);
          if (figures.problem !== null) progress(`  ${figures.problem}`);
          results.get(cell)![name]!.push(figures);
        }
      }
    }

    progress("latency, one session");
    const latency = await measureLatency({
      "smtp-sink alone": sink.port,
      ...Object.fromEntries(MAILROUTE_TARGETS.map((name, index) => [name, servers[index]!.port])),
      ...(signingOptOut ? { "mailroute (no signing)": servers[0]!.port } : {}),
      postfix: postfix.port,
    });

    const rows = CELLS.flatMap((cell) => MAILROUTE_TARGETS.map((ourName) => {
      const runs = results.get(cell)!;
      const ours = median(runs[ourName]!.map((run) => run.msgPerSecond));
      const theirs = median(runs.postfix!.map((run) => run.msgPerSecond));
      const unsupported = cell.route === UNSIGNED && !signingOptOut;
      const label = `${cell.label}${MAILROUTE_TARGETS.length > 1 ? ` — ${ourName}` : ""}`;
      return [
        unsupported ? `${label} (opt-out not built: signed)` : label,
        ours,
        theirs,
        ours === null || theirs === null || theirs === 0 ? null : `${(ours / theirs).toFixed(2)}×`,
        runs[ourName]!.map((run) => Math.round(run.msgPerSecond)).join(" / "),
        runs.postfix!.map((run) => Math.round(run.msgPerSecond)).join(" / "),
        mib(maxOf(runs[ourName]!.map((run) => run.peakRssBytes))),
        runs[ourName]!.map((run) => (run.peakRssBytes === null ? "?" : (run.peakRssBytes / 1048576).toFixed(0))).join(" / "),
        mib(maxOf(runs[ourName]!.map((run) => run.peakAnonRssBytes))),
        mib(maxOf(runs.postfix!.map((run) => run.peakRssBytes))),
        [...runs[ourName]!, ...runs.postfix!].some((run) => run.problem !== null) ? "see notes" : "",
      ];
    }));
    const problems = CELLS.flatMap((cell) =>
      names.flatMap((name) => results.get(cell)![name]!.filter((run) => run.problem !== null).map((run) => `${cell.label}, ${name}: ${run.problem}`)),
    );
    process.stdout.write(
      `${formatTable(
        `Throughput, delivered msg/s (median of ${REPEATS}, interleaved)`,
        [
          { title: "cell", align: "left" },
          { title: "mailroute" },
          { title: "Postfix" },
          { title: "ratio" },
          { title: "mailroute runs", align: "left" },
          { title: "Postfix runs", align: "left" },
          { title: "mailroute peak RSS" },
          { title: "its runs, MiB", align: "left" },
          { title: "of it anonymous" },
          { title: "Postfix peak PSS (sum)" },
          { title: "", align: "left" },
        ],
        rows,
        [
          "msg/s: messages that reached the sink ÷ time from the first connection to the last delivery (Postfix's queue drained).",
          "Peak RSS: the highest of the runs (each run's own peak beside it, in the order they ran).",
          "Postfix: PSS of master + daemons summed (shared pages divided among them); mailroute: RSS of its one process (worker threads included); mailroute ×n: RSS of the primary and its n processes summed.",
          "Anonymous: mailroute's RSS less the pages it maps from files (~55 MiB here: the Node binary's code and read-only data and the shared libraries, one copy in the page cache for every process running them).",
          ...problems,
        ],
      )}\n`,
    );
    const cpuRows = CELLS.flatMap((cell) => MAILROUTE_TARGETS.map((ourName) => {
      const runs = results.get(cell)![ourName]!;
      const run = medianRun(runs);
      const label = `${cell.label}${MAILROUTE_TARGETS.length > 1 ? ` — ${ourName}` : ""}`;
      if (run === null) return [label, ...Array.from({ length: THREAD_KINDS.length + 4 }, () => null)];
      const machine = run.machineBusy === null ? null : percent(run.machineBusy);
      if (run.cpu === null || run.delivered === 0) return [label, Math.round(run.msgPerSecond), ...THREAD_KINDS.map(() => null), null, null, machine];
      const perMessage = (kind: ThreadKind) => run.cpu![kind] / run.delivered;
      const all = THREAD_KINDS.reduce((sum, kind) => sum + perMessage(kind), 0);
      return [
        label,
        Math.round(run.msgPerSecond),
        ...THREAD_KINDS.map((kind) => perMessage(kind).toFixed(2)),
        all.toFixed(2),
        percent(run.cpu.smtp / (run.seconds * 1000)),
        machine,
      ];
    }));
    process.stdout.write(
      `${formatTable(
        "Where mailroute's CPU went, ms per delivered message (the run with the median rate)",
        [
          { title: "cell", align: "left" },
          { title: "msg/s" },
          { title: "SMTP thread" },
          { title: "signing" },
          { title: "store writer" },
          { title: "libuv pool" },
          { title: "V8 helpers" },
          { title: "other" },
          { title: "all" },
          { title: "SMTP thread busy" },
          { title: "machine busy" },
        ],
        cpuRows,
        [
          "By thread, user + system time (/proc/<pid>/task/*/stat): signing = signing threads (and the store writer's statements where one hosts it, the default); libuv pool = RSA signatures made beside a busy signing thread, file and DNS work; V8 helpers = garbage collection and compilation.",
          "SMTP thread busy: its CPU ÷ the run's wall time (100 % = never idle; with --processes n, every process's main thread summed, the primary's included, so up to n × 100 %). Machine busy: all cores, every process (smtp-source and smtp-sink included), from /proc/stat.",
        ],
      )}\n`,
    );
    const sinkLatency = latency.get("smtp-sink alone")!;
    process.stdout.write(
      `${formatTable(
        "Latency, one session, 1 KiB, one message at a time (MAIL FROM to final reply, ms)",
        [{ title: "target", align: "left" }, { title: "n" }, { title: "p50" }, { title: "p99" }, { title: "max" }, { title: "added p50" }, { title: "added p99" }],
        [...latency.entries()].map(([name, summary]) => [
          name,
          summary.count,
          ms(summary.p50Ms),
          ms(summary.p99Ms),
          ms(summary.maxMs),
          name === "smtp-sink alone" || summary.p50Ms === null || sinkLatency.p50Ms === null ? null : fixed(summary.p50Ms - sinkLatency.p50Ms),
          name === "smtp-sink alone" || summary.p99Ms === null || sinkLatency.p99Ms === null ? null : fixed(summary.p99Ms - sinkLatency.p99Ms),
        ]),
        ["added: over the sink alone. Postfix answers once the message is queued, mailroute once the sink accepted it."],
      )}\n`,
    );
    if (ROUTING_RULES > 0) {
      for (const server of servers.splice(0)) await server.stop();
      const routing = await measureRoutingScale({ rules: ROUTING_RULES, dnsAddress: dns.address, sinkPort: sink.port, progress });
      const micro = (value: number | null) => (value === null ? null : (value * 1000).toFixed(1));
      process.stdout.write(
        `${formatTable(
          `Routing at scale: ${routing.rules.toLocaleString("en")} custom addresses in one zone`,
          [{ title: "measure", align: "left" }, { title: "figure" }, { title: "issue 11 target", align: "left" }],
          [
            ["start-up: mailroute start, spawn to SMTP greeting", `${(routing.startMs / 1000).toFixed(2)} s`, "≤ 5 s"],
            ["routing table loaded from the store and built (in the bench process)", `${(routing.loadMs / 1000).toFixed(2)} s`, ""],
            ["lookup p50 (resolveRecipient, one call)", `${micro(routing.lookup.p50Ms)} µs`, ""],
            ["lookup p99", `${micro(routing.lookup.p99Ms)} µs`, "≤ 100 µs"],
            ["lookup max", `${micro(routing.lookup.maxMs)} µs`, ""],
            ["service RSS once started", mib(routing.startedRssBytes), ""],
            ["a message for the last rule, through the service", routing.rcptReply.slice(0, 40), "relayed"],
          ],
          [`${routing.lookup.count.toLocaleString("en")} lookups spread over every rule: 80 % exact, 10 % sub-address, 10 % unknown. --routing-rules N changes the count (0 skips it).`],
        )}\n`,
      );
    }
  } finally {
    for (const made of samplers) made.stop();
    for (const server of servers) await server.stop();
    await postfix?.stop();
    await sink.stop();
    await dns.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
