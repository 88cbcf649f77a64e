/**
 * `npm run bench:cluster`: how configuration changes reach a node on PostgreSQL, before and
 * after LISTEN/NOTIFY (issue 13), on the real PostgreSQL (a fresh database, dropped after).
 *
 *   before: the node polls config_version every 250 ms (RoutingConfigWatcher.start())
 *   after:  the node LISTENs; the config_version trigger notifies on commit (cli/config-watch.ts)
 *
 * Figures: the time from a committed bump to the node's reload (median, p95, max over ROUNDS
 * bumps, interleaved before/after), and config_version reads an idle node makes per minute,
 * counted by a loopback proxy in front of PostgreSQL over IDLE_MS. Prints, asserts nothing;
 * bounded: ROUNDS bumps per variant, each waited for at most 5 s.
 */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { silentLogger } from "../src/analytics/structured-log.ts";
import { watchConfiguration } from "../src/cli/config-watch.ts";
import { loadSettings } from "../src/config/settings.ts";
import { RoutingConfigWatcher } from "../src/core/routing-snapshot.ts";
import { bumpConfigVersion } from "../src/store/config-version.ts";
import { openStore, type Store } from "../src/store/open-store.ts";
import { startTcpProxy } from "../test/support/tcp-proxy.ts";
import { formatTable } from "./report-table.ts";

const ROUNDS = 40;
const IDLE_MS = 5_000;
const ADMIN_URL = process.env["MAILROUTE_TEST_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

type Variant = "before" | "after";

async function node(variant: Variant, url: string): Promise<{ routing: RoutingConfigWatcher; store: Store; stop(): Promise<void> }> {
  const store = await openStore({ dataDir: "/nonexistent", databaseUrl: url });
  const routing = new RoutingConfigWatcher(store.db, { intervalMs: 250 });
  if (variant === "before") {
    await routing.start();
    return { routing, store, stop: async () => (routing.stop(), await store.close()) };
  }
  const settings = loadSettings({ hostname: "mx.bench.test", database: url }, {});
  const watch = await watchConfiguration(settings, store, routing, silentLogger);
  return { routing, store, stop: async () => (await watch.stop(), await store.close()) };
}

async function propagation(writer: Store, reader: RoutingConfigWatcher): Promise<number> {
  const version = await bumpConfigVersion(writer.db);
  const started = performance.now();
  for (let spins = 0; spins < 5_000 && reader.version < version; spins++) await new Promise((resolve) => setTimeout(resolve, 1));
  return performance.now() - started;
}

function stats(samples: number[]): string[] {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return [at(0.5).toFixed(1), at(0.95).toFixed(1), sorted.at(-1)!.toFixed(1)];
}

async function main(): Promise<void> {
  const name = `mailroute_bench_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) }, "config_version");
  const viaProxy = new URL(url);
  viaProxy.hostname = "127.0.0.1";
  viaProxy.port = String(proxy.port);
  try {
    const writer = await openStore({ dataDir: "/nonexistent", databaseUrl: url.toString() });
    const samples: Record<Variant, number[]> = { before: [], after: [] };
    const reads: Record<Variant, number> = { before: 0, after: 0 };
    for (const variant of ["before", "after"] as const) {
      const reader = await node(variant, viaProxy.toString());
      proxy.resetCount();
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
      reads[variant] = (proxy.count() * 60_000) / IDLE_MS;
      await reader.stop();
    }
    const readers = { before: await node("before", url.toString()), after: await node("after", url.toString()) };
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of ["before", "after"] as const) samples[variant].push(await propagation(writer, readers[variant].routing));
    }
    await readers.before.stop();
    await readers.after.stop();
    await writer.close();
    process.stdout.write(
      `${formatTable(
        "Configuration change reaching a node on PostgreSQL",
        [{ title: "variant", align: "left" }, { title: "change → reload median ms" }, { title: "p95 ms" }, { title: "max ms" }, { title: "idle config_version reads / min" }],
        (["before", "after"] as const).map((variant) => [variant === "before" ? "poll 250 ms" : "LISTEN/NOTIFY", ...stats(samples[variant]), reads[variant].toFixed(0)]),
        [`${ROUNDS} bumps per variant, interleaved; reads counted over ${IDLE_MS / 1000} s idle by a loopback proxy`],
      )}\n`,
    );
  } finally {
    await proxy.stop();
    await admin.query(`drop database if exists "${name}" with (force)`);
    await admin.end();
  }
}

await main();
