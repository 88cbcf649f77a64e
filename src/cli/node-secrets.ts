/**
 * The keys and secrets a starting node works with, from the SecretStore its mode calls for:
 * files in the data directory on one node (as always), sealed rows in PostgreSQL for a
 * cluster (DESIGN §2 seams), so every node signs with the same DKIM key, opens SRS addresses
 * any node minted, and opens worker secrets any node sealed.
 *
 * Promises: a PostgreSQL node without a cluster key, or with another key than the one the
 * shared secrets were sealed with, is refused with a ClusterKeyError that says what to do —
 * before it signs or routes anything; a single node moving to PostgreSQL brings its key files
 * along (imported on first start into an empty cluster, and logged by name, never content).
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Logger } from "../analytics/structured-log.ts";
import { missingClusterKeyError, type ClusterKey } from "../config/cluster-key.ts";
import { loadOrCreateSecrets, type OnTightened } from "../config/data-dir.ts";
import type { Settings } from "../config/settings.ts";
import { fileSecretStore } from "../store/file-secret-store.ts";
import type { Store } from "../store/open-store.ts";
import { checkClusterKey, createSealedSecretStore, type SealedSecretStore } from "../store/sealed-secret-store.ts";
import { importSecretFiles } from "../store/secret-file-import.ts";
import { prefixedSecrets, secretLines, type SecretStore } from "../store/secret-store.ts";
import { lazySecretBox, SECRET_KEY_FILE, secretBoxFromLines, type SecretBox } from "../workers/secret-box.ts";

export const SRS_SECRETS = "srs-secrets";

export interface NodeSecrets {
  /** Where DKIM keys live (names `<domain>/<selector>.<algorithm>.pem`). */
  dkim: SecretStore;
  /** SRS secret lines: the first signs, all verify. */
  srs: string[];
  /** Worker secrets' encryption. */
  secretBox: SecretBox;
  /** files: the data directory (one node); cluster: sealed rows in PostgreSQL. */
  mode: "files" | "cluster";
}

/**
 * Where DKIM keys live for these settings, for tools that only publish them (`mailroute doctor`):
 * the data directory's files, or, on PostgreSQL, the cluster's sealed rows (a cluster key is required).
 */
export async function dkimSecretsFor(settings: Readonly<Settings>, store: Store): Promise<SecretStore> {
  if (store.dialect === "sqlite") return fileSecretStore(join(settings.dataDir, "dkim"));
  if (settings.clusterKey === null) throw missingClusterKeyError();
  return prefixedSecrets(await openSealedSecrets(store, settings.clusterKey), "dkim/");
}

async function openSealedSecrets(store: Store, clusterKey: ClusterKey): Promise<SealedSecretStore> {
  await checkClusterKey(store.db, clusterKey);
  return createSealedSecretStore(store.db, clusterKey);
}

/** Throws before the store is opened when a PostgreSQL node has no cluster key. */
export function requireClusterKey(settings: Readonly<Settings>): void {
  if (settings.database !== null && settings.clusterKey === null) throw missingClusterKeyError();
}

export async function loadNodeSecrets(settings: Readonly<Settings>, store: Store, logger: Logger, onTightened?: OnTightened): Promise<NodeSecrets> {
  // a PostgreSQL node without a key was refused before the store opened (requireClusterKey)
  if (store.dialect === "sqlite" || settings.clusterKey === null) {
    return {
      mode: "files",
      dkim: fileSecretStore(join(settings.dataDir, "dkim"), onTightened),
      srs: loadOrCreateSecrets(settings.dataDir, SRS_SECRETS, onTightened),
      secretBox: lazySecretBox(settings.dataDir),
    };
  }
  const clusterKey = settings.clusterKey;
  const sealed = await openSealedSecrets(store, clusterKey);
  const imported = await importSecretFiles(store.db, sealed, settings.dataDir);
  if (imported.length > 0) logger.log("info", "cluster_secrets_imported", { names: imported, from: settings.dataDir, cluster_key_id: clusterKey.id });
  const srs = secretLines(await sealed.getOrCreate(SRS_SECRETS, newSecretLine));
  return { mode: "cluster", dkim: prefixedSecrets(sealed, "dkim/"), srs, secretBox: await sealedSecretBox(sealed) };
}

/**
 * The worker secret box of a cluster, for any process that seals or opens worker secrets on
 * PostgreSQL (the server, and `mailroute worker secret …` run with --database): its key is the
 * shared sealed row, not `<dataDir>/worker-secrets.key`, which no other node has.
 */
export async function clusterSecretBox(store: Store, clusterKey: ClusterKey): Promise<SecretBox> {
  return sealedSecretBox(await openSealedSecrets(store, clusterKey));
}

async function sealedSecretBox(sealed: SealedSecretStore): Promise<SecretBox> {
  return secretBoxFromLines(secretLines(await sealed.getOrCreate(SECRET_KEY_FILE, newSecretLine)), sealed.locate(SECRET_KEY_FILE));
}

function newSecretLine(): string {
  return `${randomBytes(32).toString("base64url")}\n`;
}
