/**
 * Moving one node to PostgreSQL: the keys and secrets it kept as files in its data directory
 * (SRS secrets, worker secret-box key, DKIM keys) are imported into the cluster's sealed
 * store on first start, so mail signed and SRS addresses minted before the move keep
 * verifying afterwards.
 *
 * Promises: imports only into a database that holds no shared secret yet (an established
 * cluster's keys are never mixed with one node's files); each name is insert-if-absent, so
 * two nodes importing at once cannot overwrite each other; the files are left in place;
 * returns the names imported, never their content.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Kysely } from "kysely";
import { countSealedSecrets } from "./repositories/cluster-secret-repository.ts";
import type { Database } from "./schema.ts";
import type { SealedSecretStore } from "./sealed-secret-store.ts";

/** The data-directory files that are keys or secrets (others — the SQLite file, TLS, node-id — are not shared). */
export const SECRET_FILES = ["srs-secrets", "worker-secrets.key"] as const;

export async function importSecretFiles(db: Kysely<Database>, sealed: SealedSecretStore, dataDir: string): Promise<string[]> {
  if ((await countSealedSecrets(db)) > 0) return [];
  const imported: string[] = [];
  for (const name of [...SECRET_FILES, ...(await dkimKeyFiles(dataDir))]) {
    const value = await readFile(join(dataDir, name), "utf8").catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return null;
      throw new Error(`importing secret ${join(dataDir, name)}: ${error.message}`, { cause: error });
    });
    if (value === null || value.trim() === "") continue;
    if (await sealed.putIfAbsent(name, value)) imported.push(name);
  }
  return imported;
}

/** `dkim/<domain>/<selector>.<algorithm>.pem`, as dkim-keys.ts lays them out. */
async function dkimKeyFiles(dataDir: string): Promise<string[]> {
  const domains = await readdir(join(dataDir, "dkim"), { withFileTypes: true }).catch(() => []);
  const names: string[] = [];
  for (const domain of domains) {
    if (!domain.isDirectory()) continue;
    for (const file of await readdir(join(dataDir, "dkim", domain.name))) {
      if (/^[a-z0-9.-]+\.(rsa|ed25519)\.pem$/.test(file)) names.push(`dkim/${domain.name}/${file}`);
    }
  }
  return names.sort();
}
