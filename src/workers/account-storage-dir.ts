/**
 * An account's D1 / R2 folder under the data directory (wrangler's --persist-to layout): where
 * the runtime persists a worker's databases and buckets and where `worker d1 execute` finds them.
 *
 * Promises: the folder is always inside `<data-dir>/workers/`, whatever the account id.
 */
import { join, resolve } from "node:path";

export function accountStorageDir(dataDir: string, account: string): string {
  // account ids are ours, but a path segment must never climb out of the folder
  return join(resolve(dataDir), "workers", encodeURIComponent(account).replace(/^\.+/, (dots) => "%2E".repeat(dots.length)));
}
