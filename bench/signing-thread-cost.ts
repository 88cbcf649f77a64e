/**
 * `npm run bench:signing` (the service's Node flags, bin/service-node-flags.js):
 * what one signing thread costs in memory, and what signing a small message costs in CPU
 * (issue 11). Small and quick on purpose: a few seconds, no network, nothing asserted.
 *
 * - memory: RSS of this process before the pool and after a one-thread pool (createSigningPool,
 *   as start-service.ts starts it) has signed one message, after a collection and a pause; and
 *   that thread's own V8 heap (worker.getHeapStatistics());
 * - CPU: process.cpuUsage() per 1 KiB message signed on this thread with createMessageSigner
 *   (RSA and Ed25519 DKIM-Signatures and an ARC set i=1), median of ROUNDS rounds.
 *
 * Run it in a fresh process each time (`--runs N` repeats the memory part in child processes).
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { DkimKeyStore } from "../src/delivery/dkim-keys.ts";
import { createMessageSigner } from "../src/delivery/message-signer.ts";
import { createSigningPool } from "../src/delivery/signing-pool.ts";
import { AUTHOR_FIELDS, RECEIVED_FIELD } from "../test/support/author-message.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const MiB = 1048576;
const ROUNDS = 7;
const PER_ROUND = 200;

const message = Buffer.from(
  [
    RECEIVED_FIELD,
    ...AUTHOR_FIELDS,
    "",
    "Hello Bob, see you at noon. ".repeat(24).replace(/(.{70})/g, "$1\r\n"),
  ].join("\r\n"),
).subarray(0, 1024);

async function memory(dir: string): Promise<{ rssGrowth: number; threadHeapUsed: number; threadHeapTotal: number }> {
  const keys = new DkimKeyStore({ dir, ed25519: true });
  await keys.keysFor("route.example");
  gc();
  await sleep(200);
  const before = process.memoryUsage().rss;
  const pool = await createSigningPool({ keys, hostname: "mx.route.example", threads: 1 });
  await pool.sign({ message, routingDomain: "route.example", arc: { status: { result: "none" }, i: 0 }, authenticationResults: null });
  gc();
  await sleep(500);
  const after = process.memoryUsage().rss;
  // an idle thread is unref'd: something must hold the loop open while it answers
  const keepAlive = setInterval(() => undefined, 1000);
  const [heap] = await pool.heapStatistics();
  clearInterval(keepAlive);
  await pool.close();
  return { rssGrowth: after - before, threadHeapUsed: heap!.usedHeapSize, threadHeapTotal: heap!.totalHeapSize };
}

async function cpu(dir: string): Promise<number[]> {
  const sign = createMessageSigner({ keys: new DkimKeyStore({ dir, ed25519: true }), hostname: "mx.route.example" });
  const request = () => ({ message, routingDomain: "route.example", arc: { status: { result: "none" as const }, i: 0 }, authenticationResults: null });
  for (let i = 0; i < 50; i++) await sign(request());
  const perMessage: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.cpuUsage();
    for (let i = 0; i < PER_ROUND; i++) await sign(request());
    const used = process.cpuUsage(start);
    perMessage.push((used.user + used.system) / PER_ROUND);
  }
  return perMessage;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const dir = await mkdtemp(join(tmpdir(), "mailroute-signing-cost-"));
try {
  if (process.argv.includes("--memory-only")) {
    console.log(JSON.stringify(await memory(dir)));
  } else {
    const runs = Number(process.argv[process.argv.indexOf("--runs") + 1]) || 5;
    const samples = [];
    for (let run = 0; run < runs; run++) {
      const out = execFileSync(process.execPath, [...process.execArgv, import.meta.filename, "--memory-only"], { encoding: "utf8" });
      samples.push(JSON.parse(out.trim().split("\n").at(-1)!) as Awaited<ReturnType<typeof memory>>);
    }
    const fmt = (bytes: number) => `${(bytes / MiB).toFixed(1)}`;
    console.log(`signing thread, ${runs} fresh processes: RSS growth MiB ${samples.map((s) => fmt(s.rssGrowth)).join(" ")} (median ${fmt(median(samples.map((s) => s.rssGrowth)))})`);
    console.log(`  thread heap used MiB ${samples.map((s) => fmt(s.threadHeapUsed)).join(" ")}; committed ${samples.map((s) => fmt(s.threadHeapTotal)).join(" ")}`);
    const perMessage = await cpu(dir);
    console.log(`CPU per 1 KiB message (2 DKIM + ARC set), us: ${perMessage.map((v) => v.toFixed(0)).join(" ")} (median ${median(perMessage).toFixed(0)})`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
