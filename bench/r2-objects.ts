/**
 * R2 objects of 10 MiB through workerd's R2 binding: a worker puts one and reads it back whole,
 * served by miniflare's on-disk R2 and by the store's (SQLite, PostgreSQL). Prints the median
 * put and get times and how far the host process's RSS rose (the store's R2 streams through the
 * host; it must not hold an object whole). `npm run bench:r2`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createR2Buckets } from "../src/core/r2/r2-buckets.ts";
import { openStore } from "../src/store/open-store.ts";
import { NO_PLATFORM_BINDINGS } from "../src/workers/platform-bindings.ts";
import { WorkerRuntime } from "../src/workers/worker-runtime.ts";
import { fakeHost, workerDefinition } from "../test/workers/fake-host.ts";
import { forBenchDatabases, median } from "./bench-databases.ts";
import { RssSampler, selfRss } from "./rss-sampler.ts";

const MIB = 1024 * 1024;
const ROUNDS = 5;
const BUNDLE = `export default { async email(message, env) {
  const body = new Uint8Array(10 * 1024 * 1024).fill(7);
  let at = performance.now();
  await env.B.put("big", body);
  const put = performance.now() - at;
  at = performance.now();
  const read = await (await env.B.get("big")).arrayBuffer();
  const get = performance.now() - at;
  console.log(JSON.stringify({ put, get, size: read.byteLength }));
} };`;

const ENVELOPE = { from: "a@b.c", to: "d@e.f", raw: Buffer.from("Subject: x\r\n\r\nx") };
const rss = new RssSampler(selfRss(), 5);

async function run(label: string, runtime: WorkerRuntime, storageDir?: string): Promise<void> {
  const definition = workerDefinition({ account: "bench", name: "r2-bench", bundle: BUNDLE, platform: { ...NO_PLATFORM_BINDINGS, r2: [{ binding: "B", bucket: "bench" }] }, ...(storageDir === undefined ? {} : { storageDir }) });
  const host = fakeHost();
  const puts: number[] = [];
  const gets: number[] = [];
  // one warm-up start of the process, then the measured rounds
  await runtime.invoke(definition, ENVELOPE, host, { deadlineMs: 60_000 });
  const window = rss.begin();
  for (let round = 0; round < ROUNDS; round++) {
    const result = await runtime.invoke(definition, ENVELOPE, host, { deadlineMs: 60_000 });
    const line = result.logs.find((log) => log.message.startsWith("{"));
    if (line === undefined) throw new Error(`${label}: ${result.error ?? JSON.stringify(result.logs)}`);
    const { put, get, size } = JSON.parse(line.message) as { put: number; get: number; size: number };
    if (size !== 10 * MIB) throw new Error(`${label}: read ${size} bytes`);
    puts.push(put);
    gets.push(get);
  }
  const { startBytes, peakBytes } = window.end();
  const rise = startBytes === null || peakBytes === null ? "n/a" : `+${((peakBytes - startBytes) / MIB).toFixed(1)} MiB`;
  console.log(`${label.padEnd(22)} put ${median(puts).toFixed(0).padStart(5)} ms   get ${median(gets).toFixed(0).padStart(5)} ms   host RSS ${rise} (peak over ${ROUNDS} rounds)`);
}

console.log("R2 object of 10 MiB, put then get whole, from a worker (median of 5)");
const dir = mkdtempSync(join(tmpdir(), "mailroute-bench-r2-"));
const onDisk = new WorkerRuntime({ memoryLimitMb: null });
try {
  await run("miniflare on disk", onDisk, dir);
} finally {
  await onDisk.dispose();
  rmSync(dir, { recursive: true, force: true });
}
await forBenchDatabases("mailroute-bench-r2", { sqlite: "store, SQLite", postgres: "store, PostgreSQL" }, async (label, options) => {
  const store = await openStore(options);
  const runtime = new WorkerRuntime({ memoryLimitMb: null, r2: (account) => createR2Buckets(store, account) });
  try {
    await run(label, runtime);
  } finally {
    await runtime.dispose();
    await store.close();
  }
});
rss.stop();
