/**
 * Opening the configuration a command acts on: the store named by --data-dir / --database
 * (or their environment twins), never creating one by accident (only `mailroute init` and
 * `start` may), and the account services of --account acting as the CLI operator, with worker
 * secrets sealed where the nodes can open them.
 */
import { CLI_OPERATOR } from "../core/service-context.ts";
import { createServices, type AccountServices } from "../core/services.ts";
import { envName } from "../config/settings.ts";
import { DEFAULT_ACCOUNT_ID, openStore, StoreMissingError, type Store } from "../store/open-store.ts";
import { lazySecretBox, type SecretBox } from "../workers/secret-box.ts";
import { loadClusterKey } from "../config/cluster-key.ts";
import { clusterSecretBox } from "./node-secrets.ts";
import { CliError } from "./cli-error.ts";
import type { StoreFlags } from "./command-spec.ts";

export function dataDirOf(values: StoreFlags): string {
  return values.dataDir ?? (process.env[envName("data-dir")] || undefined) ?? "./data";
}

/**
 * Opens the store named by --data-dir / --database (or their environment twins). Only
 * `create: true` (mailroute init) may make a new one: anything else refuses a missing store,
 * naming the path it looked at, instead of answering success against a new empty one.
 */
export async function withStore<T>(values: StoreFlags, work: (store: Store) => Promise<T>, options: { create?: boolean } = {}): Promise<T> {
  const dataDir = dataDirOf(values);
  const database = values.database ?? process.env[envName("database")] ?? undefined;
  let store: Store;
  try {
    store = await openStore({ dataDir, databaseUrl: database || undefined, create: options.create === true });
  } catch (error) {
    if (error instanceof StoreMissingError) throw missingStore(error, dataDir);
    throw new CliError(`cannot open the mailroute store: ${(error as Error).message}`, { hint: "check --data-dir (or MAILROUTE_DATA_DIR) points at the server's data directory" });
  }
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

export function missingStore(error: StoreMissingError, dataDir: string): CliError {
  return new CliError(`${error.message} (--data-dir ${dataDir}, from ${process.cwd()}); nothing was changed`, {
    hint: `pass --data-dir <the server's data directory> (or set ${envName("data-dir")}); to create a new store there on purpose: mailroute init --data-dir ${dataDir}`,
  });
}

/** The services of --account (default: the built-in account), acting as the operator at the CLI. */
export async function withService<T>(values: StoreFlags, work: (services: AccountServices, store: Store) => Promise<T>): Promise<T> {
  return withStore(values, async (store) =>
    work(createServices(store, { secretBox: await secretBoxFor(store, dataDirOf(values)), dataDir: dataDirOf(values) }).forAccount({ account: values.account ?? DEFAULT_ACCOUNT_ID, actor: CLI_OPERATOR }), store),
  );
}

/**
 * Where worker secrets are sealed: beside the SQLite file (lazily, so a command that seals
 * nothing creates no key file), or — for a cluster's PostgreSQL store — the box every node
 * shares, sealed with the cluster key (a local key file would seal secrets no node can open).
 */
async function secretBoxFor(store: Store, dataDir: string): Promise<SecretBox> {
  if (store.dialect !== "postgres") return lazySecretBox(dataDir);
  const key = loadClusterKey({ file: process.env["MAILROUTE_CLUSTER_KEY_FILE"] || null, inline: process.env["MAILROUTE_CLUSTER_KEY"] || null });
  if (key !== null) return clusterSecretBox(store, key);
  const refuse = (): never => {
    throw new CliError("this store is a cluster's (PostgreSQL): worker secrets are sealed with the cluster key", { hint: "set MAILROUTE_CLUSTER_KEY_FILE to the file every node starts with (or MAILROUTE_CLUSTER_KEY to its content), then run the command again" });
  };
  return Object.freeze({ seal: refuse, open: refuse });
}
