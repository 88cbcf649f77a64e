/**
 * `npm run bench:activity`: the activity API's reads with many events (issue 10): fills one
 * zone with EVENTS events over 30 days (plus a second zone's as noise) on a real SQLite file
 * and the real PostgreSQL, then times the 30-day and 24-hour summaries and the first
 * activity page, each RUNS times interleaved; prints the median and worst in ms.
 * Prints figures, asserts nothing; bounded: EVENTS rows (default 1,000,000; BENCH_EVENTS
 * overrides) and RUNS reads per query and database.
 */
import { performance } from "node:perf_hooks";
import { CLI_OPERATOR } from "../src/core/service-context.ts";
import { createServices } from "../src/core/services.ts";
import { openStore, type Store } from "../src/store/open-store.ts";
import { insertEvents } from "../src/store/repositories/event-repository.ts";
import { forBenchDatabases, median } from "./bench-databases.ts";

const EVENTS = Number(process.env["BENCH_EVENTS"] ?? 1_000_000);
const RUNS = 7;
const BATCH = 500;
const OUTCOMES = ["forwarded", "forwarded", "forwarded", "dropped", "rejected", "deferred", "delivery_failed", "worker"];

async function fill(store: Store, zone: string, account: string, count: number): Promise<void> {
  const now = Date.now();
  const span = 30 * 86_400_000;
  for (let done = 0; done < count; done += BATCH) {
    const rows = Array.from({ length: Math.min(BATCH, count - done) }, (_, i) => {
      const n = done + i;
      return {
        received_at: new Date(now - span + Math.floor((n / count) * span)).toISOString(),
        session_id: `s${n}`,
        client_ip: "192.0.2.1",
        message_id: `<${n}@bench>`,
        subject: `message ${n}`,
        mail_from: `sender${n % 997}@origin.test`,
        rcpt_to: `user${n % 101}@${zone}`,
        zone,
        account_id: account,
        action: "forward",
        outcome: OUTCOMES[n % OUTCOMES.length]!,
        reply_code: 250,
        reply_text: "250 ok",
        size: 1000,
        duration_ms: 20,
        detail: "{}",
        spf: "pass",
      };
    });
    await insertEvents(store.db, rows);
  }
}

async function time(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

async function main(): Promise<void> {
  const rows: (string | number)[][] = [];
  await forBenchDatabases("mailroute-activity-bench", { sqlite: "sqlite", postgres: "postgresql" }, async (label, options) => {
      const store = await openStore(options);
      try {
        const services = createServices(store);
        const zone = await services.forAccount({ account: "default", actor: CLI_OPERATOR }).zones.create("bench.example");
        process.stderr.write(`bench:activity: ${label}: filling ${EVENTS} events\n`);
        await fill(store, "bench.example", "default", EVENTS);
        await fill(store, "noise.example", "other", Math.floor(EVENTS / 10));
        if (label === "postgresql") await sql(store, "analyze events");
        const activity = services.forAccount({ account: "default", actor: CLI_OPERATOR }).activity;
        const figures: Record<string, number[]> = { "summary 30d": [], "summary 24h": [], "activity page 1": [], "activity outcome=rejected": [] };
        for (let run = 0; run < RUNS; run++) {
          figures["summary 30d"]!.push(await time(() => activity.summary(zone.id, "30d")));
          figures["summary 24h"]!.push(await time(() => activity.summary(zone.id, "24h")));
          figures["activity page 1"]!.push(await time(() => activity.list(zone.id, {}, { page: 1, perPage: 50 })));
          figures["activity outcome=rejected"]!.push(await time(() => activity.list(zone.id, { outcome: "rejected" }, { page: 1, perPage: 50 })));
        }
        for (const [query, values] of Object.entries(figures)) rows.push([label, query, median(values).toFixed(1), Math.max(...values).toFixed(1)]);
      } finally {
        await store.close();
      }
  });
  process.stdout.write(`${EVENTS} events in one zone over 30 days, ${RUNS} runs each\n`);
  for (const row of [["database", "query", "median ms", "worst ms"], ...rows]) process.stdout.write(`${row.map(String).join("\t")}\n`);
}

async function sql(store: Store, text: string): Promise<void> {
  const { sql: tag } = await import("kysely");
  await tag.raw(text).execute(store.db);
}

void main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exitCode = 1;
});
