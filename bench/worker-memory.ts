/**
 * `npm run bench:worker-memory`: what a burst of large messages to an Email Worker costs the SMTP
 * process, beside the same burst to a plain forward rule (issue 8, item 1: 40 concurrent 5.7 MiB
 * messages to a slow worker once raised the SMTP process's RSS by 828 MiB, 63 MiB for a rule).
 *
 * Each round starts a fresh mailroute child process (`node src/cli/main.ts start`, so its RSS is
 * its own: the bench client, the sink and the workerd processes are other processes), sends
 * BURST messages of MESSAGE_BYTES at once, one session each, and samples the server's RSS every
 * 50 ms: before, peak during, after. Targets alternate rule, worker, rule, worker… so a noisy
 * machine shifts both alike. The worker waits WORKER_DELAY_MS, then forwards to the same sink.
 *
 * Prints figures and replies; asserts nothing. Bounded: ROUNDS rounds, each send with a 120 s
 * reply timeout; everything on 127.0.0.1.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { workerCommand } from "../src/cli/worker/worker-command.ts";
import { CLI_OPERATOR } from "../src/core/service-context.ts";
import { createServices } from "../src/core/services.ts";
import { openStore } from "../src/store/open-store.ts";
import { DESTINATION, ENVELOPE, SERVER_HOSTNAME, startLoopbackEnvironment, type LoopbackEnvironment } from "./loopback-environment.ts";
import { startChildServer } from "./mailroute-server.ts";
import { streamedMessage } from "./message-source.ts";
import { formatTable, mib, mibDelta } from "./report-table.ts";
import { RssSampler } from "./rss-sampler.ts";
import { LoadSession } from "./smtp-load-client.ts";

const BURST = 40;
const MESSAGE_BYTES = Math.round(5.7 * 1048576);
const ROUNDS = process.argv.includes("--quick") ? 1 : 2;
const WORKER_DELAY_MS = 1000;
const WORKER_ADDRESS = "slow@bench.test";
const SETTLE_MS = 1500;

const SLOW_WORKER = `export default {
  async email(message, env) {
    await new Promise((resolve) => setTimeout(resolve, ${WORKER_DELAY_MS}));
    await message.forward(env.DESTINATION);
  },
};`;

interface Round {
  target: "rule" | "worker";
  beforeBytes: number | null;
  peakBytes: number | null;
  afterBytes: number | null;
  seconds: number;
  replies: Map<string, number>;
}

function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

async function addWorker(dataDir: string): Promise<void> {
  const entry = join(dataDir, "slow-worker.js");
  writeFileSync(entry, SLOW_WORKER);
  await workerCommand(["deploy", "slow", entry, "--data-dir", dataDir, "--var", `DESTINATION=${DESTINATION}`], { out: () => undefined });
  const store = await openStore({ dataDir });
  try {
    await createServices(store).forAccount({ account: "default", actor: CLI_OPERATOR }).rules.create({ matchers: [{ type: "literal", field: "to", value: WORKER_ADDRESS }], actions: [{ type: "worker", value: ["slow"] }] });
  } finally {
    await store.close();
  }
}

async function burst(port: number, to: string): Promise<Map<string, number>> {
  const replies = new Map<string, number>();
  await Promise.all(
    Array.from({ length: BURST }, async (_, index) => {
      let line: string;
      try {
        const session = await LoadSession.open({ host: "127.0.0.1", port, timeoutMs: 120_000 });
        try {
          line = (await session.send({ from: ENVELOPE.from, to }, streamedMessage(MESSAGE_BYTES, to, index + 1))).reply.line;
        } finally {
          await session.quit().catch(() => session.destroy());
        }
      } catch (error) {
        line = `session failed: ${(error as Error).message}`;
      }
      // "250 2.0.0 Ok: queued as X, …" → "250 2.0.0 Ok": one row per kind of answer
      const kind = line.replace(/^(\d{3}(?: \d\.\d{1,3}\.\d{1,3})?).*$/, "$1");
      replies.set(kind, (replies.get(kind) ?? 0) + 1);
    }),
  );
  return replies;
}

async function measure(env: LoopbackEnvironment, target: Round["target"]): Promise<Round> {
  const dataDir = await env.newDataDir();
  if (target === "worker") await addWorker(dataDir);
  const server = await startChildServer({ dataDir, dnsAddress: env.dns.address, sinkPort: env.sink.port, hostname: SERVER_HOSTNAME });
  const rss = new RssSampler(server.rss, 50);
  try {
    const to = target === "worker" ? WORKER_ADDRESS : ENVELOPE.to;
    // one small message first, so the worker runtime (or the outbound pool) already exists
    await burstOfOne(server.port, to);
    await sleep(SETTLE_MS);
    const window = rss.begin();
    const started = performance.now();
    const replies = await burst(server.port, to);
    const seconds = (performance.now() - started) / 1000;
    const figures = window.end();
    await sleep(SETTLE_MS);
    return { target, beforeBytes: figures.startBytes, peakBytes: figures.peakBytes, afterBytes: rss.now(), seconds, replies };
  } finally {
    rss.stop();
    await server.stop();
  }
}

async function burstOfOne(port: number, to: string): Promise<void> {
  const session = await LoadSession.open({ host: "127.0.0.1", port, timeoutMs: 60_000 });
  try {
    const result = await session.send({ from: ENVELOPE.from, to }, streamedMessage(4096, to));
    if (!result.ok) throw new Error(`warm-up message to ${to} refused: ${result.reply.line}`);
  } finally {
    await session.quit().catch(() => session.destroy());
  }
}

async function main(): Promise<void> {
  const env = await startLoopbackEnvironment();
  const rounds: Round[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const target of ["rule", "worker"] as const) {
        progress(`round ${round}: ${BURST} × ${(MESSAGE_BYTES / 1048576).toFixed(1)} MiB to the ${target}`);
        rounds.push(await measure(env, target));
      }
    }
  } finally {
    await env.close();
  }
  process.stdout.write(
    formatTable(
      `SMTP process RSS: ${BURST} concurrent messages of ${MESSAGE_BYTES.toLocaleString("en-US")} bytes (5.7 MiB)`,
      [{ title: "target", align: "left" }, { title: "RSS before" }, { title: "peak" }, { title: "after" }, { title: "growth at peak" }, { title: "s" }, { title: "replies", align: "left" }],
      rounds.map((round) => [
        round.target === "rule" ? "forward rule" : `worker (waits ${WORKER_DELAY_MS} ms, forwards)`,
        mib(round.beforeBytes),
        mib(round.peakBytes),
        mib(round.afterBytes),
        mibDelta(round.beforeBytes, round.peakBytes),
        round.seconds,
        [...round.replies].map(([kind, count]) => `${count}× ${kind}`).join(", "),
      ]),
      ["RSS of the mailroute child process only (workerd and the bench client are other processes); peaks are lower bounds (50 ms samples)."],
    ),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
