/**
 * The cluster key: the operator's 256-bit key that seals the keys and secrets a PostgreSQL
 * cluster shares (store/sealed-secret-store.ts). It comes from `--cluster-key-file`
 * (MAILROUTE_CLUSTER_KEY_FILE) or MAILROUTE_CLUSTER_KEY, base64 of 32 random bytes, and is
 * never written anywhere by mailroute: a copy of the database alone reveals no key.
 *
 * Promises: the key is never part of an error message or a log line; its id (the first 8
 * bytes of SHA-256 over it, hex) is what is stored beside sealed values and what errors name,
 * so an operator can tell which key a node has without the key leaving the machine.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

export interface ClusterKey {
  /** hex, 16 characters: names the key in rows and error messages. */
  readonly id: string;
  /** 32 bytes, AES-256. A secret: never log it. */
  readonly key: Buffer;
}

/** What an operator runs to make a key (the refusal without one prints it). */
export const CLUSTER_KEY_HOWTO =
  "make one on any machine with `openssl rand -base64 32 > cluster.key` (chmod 600), copy that file to every node, " +
  "and start each node with --cluster-key-file <path> (MAILROUTE_CLUSTER_KEY_FILE), or put its content in MAILROUTE_CLUSTER_KEY";

export class ClusterKeyError extends Error {
  override readonly name = "ClusterKeyError";
}

export interface ClusterKeySource {
  /** --cluster-key-file / MAILROUTE_CLUSTER_KEY_FILE */
  file: string | null;
  /** MAILROUTE_CLUSTER_KEY (environment only: a flag would show in the process list) */
  inline: string | null;
}

/** The key from a file or the environment; null when neither is given. Throws ClusterKeyError naming the source. */
export function loadClusterKey(source: ClusterKeySource): ClusterKey | null {
  if (source.file !== null && source.inline !== null) {
    throw new ClusterKeyError("give --cluster-key-file (MAILROUTE_CLUSTER_KEY_FILE) or MAILROUTE_CLUSTER_KEY, not both");
  }
  if (source.file !== null) {
    let text: string;
    try {
      text = readFileSync(source.file, "utf8");
    } catch (error) {
      throw new ClusterKeyError(`cluster key file "${source.file}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
    }
    return parseClusterKey(text, `cluster key file "${source.file}"`);
  }
  if (source.inline !== null) return parseClusterKey(source.inline, "MAILROUTE_CLUSTER_KEY");
  return null;
}

export function parseClusterKey(text: string, origin: string): ClusterKey {
  const trimmed = text.trim();
  // strict base64: a typo must not silently decode to a different (shorter) key
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) throw new ClusterKeyError(`${origin}: not base64 (${CLUSTER_KEY_HOWTO})`);
  const key = Buffer.from(trimmed.replaceAll("-", "+").replaceAll("_", "/"), "base64");
  if (key.length !== 32) throw new ClusterKeyError(`${origin}: holds ${key.length} bytes, a cluster key is 32 (${CLUSTER_KEY_HOWTO})`);
  return Object.freeze({ id: clusterKeyId(key), key });
}

export function clusterKeyId(key: Uint8Array): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 16);
}

/** The refusal for a PostgreSQL node started without a key. */
export function missingClusterKeyError(): ClusterKeyError {
  return new ClusterKeyError(`a node on PostgreSQL (--database) needs the cluster key that seals the shared DKIM keys and secrets: ${CLUSTER_KEY_HOWTO}`);
}
