/**
 * The store writer the service hands its delivery ledger and its event recorder (SQLite only;
 * null on PostgreSQL, whose writes go through Kysely's pool): the writes every relayed message
 * makes, beside the SMTP thread or grouped on it (issue 11).
 * - on a thread (--store-writer-thread true, the default): the first signing thread's, when the
 *   pool hosts one (one isolate fewer, ~12 MiB), else a thread of its own (--signing-threads 0);
 * - on the SMTP thread (--store-writer-thread false): committed together once per turn of its
 *   event loop (sqlite-group-commit.ts), for a node where memory matters most.
 */
import type { MessagePort } from "node:worker_threads";
import { leaseKyselyConnection } from "../store/kysely-connection-lease.ts";
import { SqliteGroupCommit } from "../store/sqlite-group-commit.ts";
import { SqliteWriter, type StoreWriter } from "../store/sqlite-writer.ts";
import type { Store } from "../store/store.ts";

export async function startStoreWriter(store: Store, options: { onThread: boolean; host: (() => Promise<MessagePort>) | null }): Promise<StoreWriter | null> {
  if (store.sqliteFile === undefined) return null;
  if (!options.onThread) return new SqliteGroupCommit(leaseKyselyConnection(store.db));
  return options.host === null ? SqliteWriter.start(store.sqliteFile) : SqliteWriter.hostedBy(options.host);
}
