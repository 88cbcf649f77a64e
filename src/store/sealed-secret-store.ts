/**
 * SecretStore in the database (cluster mode): each key or secret is one `cluster_secrets` row,
 * sealed with the operator's cluster key — AES-256-GCM, a fresh 96-bit IV per value, the
 * secret's name as associated data (a sealed value copied to another name does not open), and
 * the cluster key's id stored beside it.
 *
 * Promises:
 * - the database never holds a plaintext key or the cluster key;
 * - creation is race-free across nodes: insert-if-absent, then read back the winner, so nodes
 *   starting at once all sign with one DKIM key and mint SRS with one secret;
 * - a node with another cluster key gets a ClusterKeyError naming both key ids (never a
 *   garbage key, never a signature nobody can verify); a value that fails authentication under
 *   the right key id is reported as tampered, naming the secret only.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import { ClusterKeyError, type ClusterKey } from "../config/cluster-key.ts";
import { anySealedKeyId, insertSealedSecretIfAbsent, readSealedSecret, type ClusterSecretRow } from "./repositories/cluster-secret-repository.ts";
import type { Database } from "./schema.ts";
import { checkSecretName, type SecretStore } from "./secret-store.ts";

const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface SealedSecretStore extends SecretStore {
  /** Stores `value` under `name` unless the name is taken; true when stored (file import). */
  putIfAbsent(name: string, value: string): Promise<boolean>;
}

export function createSealedSecretStore(db: Kysely<Database>, clusterKey: ClusterKey): SealedSecretStore {
  async function insert(name: string, value: string): Promise<boolean> {
    return insertSealedSecretIfAbsent(db, { name, key_id: clusterKey.id, sealed: seal(clusterKey, name, value), created_at: new Date().toISOString() });
  }
  return Object.freeze({
    getOrCreate: async function getOrCreateSealed(name: string, generate: () => string | Promise<string>): Promise<string> {
      checkSecretName(name);
      const row = await readSealedSecret(db, name);
      if (row !== undefined) return unseal(clusterKey, row);
      await insert(name, await generate());
      // inserted or not, the row that committed first is the one every node uses
      const winner = await readSealedSecret(db, name);
      if (winner === undefined) throw new Error(`cluster secret "${name}": vanished while being created`);
      return unseal(clusterKey, winner);
    },
    locate: (name: string) => `cluster secret "${name}"`,
    putIfAbsent: function putIfAbsent(name: string, value: string): Promise<boolean> {
      return insert(checkSecretName(name), value);
    },
  });
}

/** Refuses a node whose cluster key is not the one the shared secrets were sealed with. */
export async function checkClusterKey(db: Kysely<Database>, clusterKey: ClusterKey): Promise<void> {
  const sealedWith = await anySealedKeyId(db);
  if (sealedWith !== undefined && sealedWith !== clusterKey.id) throw wrongKey(sealedWith, clusterKey.id);
}

function wrongKey(sealedWith: string, ours: string): ClusterKeyError {
  return new ClusterKeyError(
    `wrong cluster key: the shared keys in this database were sealed with cluster key ${sealedWith}, this node has ${ours}; ` +
      "start every node with the same --cluster-key-file (MAILROUTE_CLUSTER_KEY_FILE) or MAILROUTE_CLUSTER_KEY",
  );
}

export function seal(clusterKey: ClusterKey, name: string, plaintext: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", clusterKey.key, iv);
  cipher.setAAD(Buffer.from(name, "utf8"));
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
}

export function unseal(clusterKey: ClusterKey, row: Pick<ClusterSecretRow, "name" | "key_id" | "sealed">): string {
  if (row.key_id !== clusterKey.id) throw wrongKey(row.key_id, clusterKey.id);
  const raw = Buffer.from(row.sealed, "base64url");
  if (raw.length < IV_BYTES + TAG_BYTES) throw new Error(`cluster secret "${row.name}": truncated`);
  try {
    const decipher = createDecipheriv("aes-256-gcm", clusterKey.key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(row.name, "utf8"));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString("utf8");
  } catch (error) {
    throw new Error(`cluster secret "${row.name}": does not authenticate under cluster key ${clusterKey.id} (altered in the database?)`, { cause: error });
  }
}
