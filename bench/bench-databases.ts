/**
 * What the storage benches share: a run over a fresh SQLite file and a throw-away PostgreSQL
 * database (created on the machine's server, dropped afterwards whatever happens), and the
 * median of a set of timings. Bounded: one database of each kind per run.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { OpenStoreOptions } from "../src/store/open-store.ts";

const ADMIN_URL = process.env["MAILROUTE_TEST_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

export const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Runs `each` with the open-store options of SQLite, then of PostgreSQL, labelled as given. */
export async function forBenchDatabases(prefix: string, labels: { sqlite: string; postgres: string }, each: (label: string, options: OpenStoreOptions) => Promise<void>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const name = `mailroute_bench_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  try {
    await each(labels.sqlite, { dataDir });
    await each(labels.postgres, { dataDir, databaseUrl: url.toString() });
  } finally {
    await admin.query(`drop database if exists "${name}" with (force)`).catch(() => undefined);
    await admin.end();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
