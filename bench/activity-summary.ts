/**
 * `npm run bench:activity`: the activity API's reads with many events (issue 10): fills one
 * zone with EVENTS events over 30 days (plus a second zone's as noise) on a real SQLite file
 * and the real PostgreSQL, then times the 30-day and 24-hour summaries and the first
 * activity page, each RUNS times interleaved; prints the median and worst in ms.
 * Prints figures, asserts nothing; bounded: EVENTS rows (default 1,000,000; BENCH_EVENTS
 * overrides) and RUNS reads per query and database.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { CLI_OPERATOR } from "../src/core/service-context.ts";
import { createServices } from "../src/core/services.ts";
import { openStore, type Store } from "../src/store/open-store.ts";
import { insertEvents } from "../src/store/repositories/event-repository.ts";

const EVENTS = Number(process.env["BENCH_EVENTS"] ?? 1_000_000);
const RUNS = 7;
const BATCH = 500;
const ADMIN_URL = process.env["MAILROUTE_TEST_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
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

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const rows: (string | number)[][] = [];
  const dataDir = mkdtempSync(join(tmpdir(), "mailroute-activity-bench-"));
  const name = `mailroute_bench_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  try {
    for (const [label, options] of [
      ["sqlite", { dataDir }],
      ["postgresql", { dataDir, databaseUrl: url.toString() }],
    ] as const) {
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
    }
  } finally {
    await admin.query(`drop database if exists "${name}" with (force)`).catch(() => undefined);
    await admin.end();
    rmSync(dataDir, { recursive: true, force: true });
  }
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
