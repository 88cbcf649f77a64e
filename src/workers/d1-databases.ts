/**
 * D1 outside the running worker: applying a database's migrations and running SQL against it,
 * both through wrangler's own local D1 commands (`wrangler d1 migrations apply|execute --local
 * --persist-to <account folder>`), on the same files the runtime's miniflare D1 uses.
 *
 * Why wrangler's commands: migrations then apply exactly as wrangler applies them (its
 * `d1_migrations` table, file order, one transaction per file) and `execute --file` splits SQL
 * as wrangler does; the layout (`<dir>/v3/d1/…`) is wrangler's, so `wrangler d1 execute --local
 * --persist-to <data-dir>/workers/<account>` works on a mailroute server's data too.
 *
 * Promises: failures come back as D1Error with wrangler's explanation (never a stack); SQL
 * results come back as wrangler's JSON (one entry per statement); nothing runs remotely (no
 * credentials reach wrangler, and --local is always given).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runWrangler } from "./worker-bundler.ts";

export interface D1Target {
  /** The name wrangler's commands take: the binding, or the database_name. */
  name: string;
  databaseId: string;
}

export class D1Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = "D1Error";
  }
}

export interface D1Result {
  results: Record<string, unknown>[];
  success: boolean;
  meta: Record<string, unknown>;
}

/** Applies the pending migrations of `binding` from the worker's own wrangler file; returns wrangler's report. */
export async function applyD1Migrations(options: { config: string; cwd: string; binding: string; storageDir: string }): Promise<string> {
  await mkdir(options.storageDir, { recursive: true, mode: 0o700 });
  return withHome(async (home) => {
    const run = await runWrangler(["d1", "migrations", "apply", options.binding, "--local", "--persist-to", options.storageDir, "--config", options.config], { cwd: options.cwd, home });
    if (run.code !== 0) throw new D1Error(`migrations of D1 database ${options.binding} failed:\n${explain(run)}`);
    return summary(run.stdout);
  });
}

/** Runs `sql` (a command, or a file of statements) against one database of the account. */
export async function executeD1(options: { target: D1Target; storageDir: string; command?: string; file?: string }): Promise<D1Result[]> {
  await mkdir(options.storageDir, { recursive: true, mode: 0o700 });
  return withHome(async (home) => {
    const config = join(home, "wrangler.json");
    const database = { binding: "DB", database_name: options.target.name, database_id: options.target.databaseId };
    await writeFile(config, JSON.stringify({ name: "mailroute-d1", compatibility_date: "2024-09-23", d1_databases: [database] }), { mode: 0o600 });
    const args = ["d1", "execute", options.target.name, "--local", "--persist-to", options.storageDir, "--config", config, "--json", "--yes"];
    if (options.command !== undefined) args.push("--command", options.command);
    if (options.file !== undefined) args.push("--file", options.file);
    const run = await runWrangler(args, { cwd: home, home });
    if (run.code !== 0) throw new D1Error(explain(run));
    try {
      return JSON.parse(run.stdout.slice(run.stdout.indexOf("["))) as D1Result[];
    } catch {
      throw new D1Error(`wrangler answered something other than JSON:\n${run.stdout.slice(0, 2000)}`);
    }
  });
}

async function withHome<T>(work: (home: string) => Promise<T>): Promise<T> {
  const home = await mkdtemp(join(tmpdir(), "mailroute-d1-"));
  try {
    return await work(home);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** wrangler's own complaint: its JSON error, or its ✘ [ERROR] lines, without log-file notices. */
function explain(run: { stdout: string; stderr: string }): string {
  try {
    const parsed = JSON.parse(run.stdout) as { error?: { text?: string; notes?: { text: string }[] } };
    if (parsed.error?.text !== undefined) return [parsed.error.text, ...(parsed.error.notes ?? []).map((note) => note.text)].join("\n");
  } catch {
    // not JSON: fall back to the text
  }
  const lines = `${run.stderr}\n${run.stdout}`.split(/\r?\n/).map((line) => line.trim());
  const errors = lines.filter((line) => line.includes("[ERROR]")).map((line) => line.replace(/^.*\[ERROR\]\s*/, ""));
  const chosen = errors.length > 0 ? errors : lines.filter((line) => line !== "" && !line.startsWith("🪵"));
  return chosen.join("\n").slice(0, 4000) || "wrangler failed without saying why";
}

/** The useful part of wrangler's migration report: which files it applied. */
function summary(stdout: string): string {
  const applied = [...stdout.matchAll(/(\S+\.sql)\s*│\s*✅/g)].map((match) => match[1]!);
  if (applied.length > 0) return `applied ${[...new Set(applied)].join(", ")}`;
  return /No migrations to apply/i.test(stdout) ? "no migrations to apply" : "";
}
