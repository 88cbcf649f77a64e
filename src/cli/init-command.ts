/**
 * `mailroute init`: the one configuration command that may create a store.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { envName } from "../config/settings.ts";
import { SQLITE_FILE_NAME } from "../store/open-store.ts";
import { parseCommand, type LeafSpec, type StoreFlags } from "./command-spec.ts";
import { dataDirOf, withStore } from "./open-configuration.ts";
import { type Output, emit } from "./command-output.ts";

export const INIT_SPEC: LeafSpec = {
  name: "init",
  summary: "create a new, empty store (the only command besides start that may)",
  example: "mailroute init --data-dir /var/lib/mailroute",
  options: [
    ["--data-dir <dir>", "where to create it (default ./data, or MAILROUTE_DATA_DIR)"],
    ["--database <url>", "postgres:// URL instead (or MAILROUTE_DATABASE)"],
    ["--json", "print the result as JSON"],
  ],
};

/** `mailroute init`: the one configuration command that may create a store. */
export async function initCommand(argv: string[], output: Output): Promise<void> {
  const { values } = parseCommand<StoreFlags>(INIT_SPEC, argv);
  const dataDir = dataDirOf(values);
  const database = values.database ?? process.env[envName("database")] ?? "";
  const path = resolve(dataDir, SQLITE_FILE_NAME);
  const existed = database !== "" || existsSync(path);
  await withStore(values, async () => undefined, { create: true });
  const where = database !== "" ? "the PostgreSQL database" : path;
  emit(output, values, { store: where, created: !existed }, [existed ? `a mailroute store already exists at ${where} (schema up to date)` : `created a new mailroute store at ${where}`, `next: mailroute start --data-dir ${dataDir}, or mailroute domain add example.com --data-dir ${dataDir}`]);
}
