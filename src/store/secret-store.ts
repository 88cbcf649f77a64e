/**
 * The SecretStore seam (DESIGN §2, "Seams for more than one node"): where mailroute keeps the
 * keys and secrets it generates on first use — DKIM private keys, the SRS secrets, the worker
 * secret-box key. One node keeps them as files in its data directory (file-secret-store.ts);
 * a PostgreSQL cluster keeps them as rows sealed with the operator's cluster key
 * (sealed-secret-store.ts), so every node signs with the same DKIM key and opens the SRS
 * addresses any other node minted.
 *
 * Promises of every implementation: a name, once it holds a value, holds that value for ever
 * (no overwrite); callers racing to create it — threads, processes, nodes — all receive the
 * value that was stored first, never their own discarded one.
 */

export interface SecretStore {
  /** The value stored under `name`, or `generate()`'s value stored now if there was none. */
  getOrCreate(name: string, generate: () => string | Promise<string>): Promise<string>;
  /** Where `name` lives, for error messages that name the offending key (a path, or a row). */
  locate(name: string): string;
}

// Names are the paths the secrets have as files (`srs-secrets`, `dkim/example.com/mailroute.rsa.pem`):
// a name must never climb out of the data directory.
const NAME = /^[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)*$/;

export function checkSecretName(name: string): string {
  if (!NAME.test(name) || name.split("/").some((segment) => segment === "." || segment === "..")) {
    throw new Error(`secret name "${name}": lower-case path segments of letters, digits, ".", "_" and "-" only`);
  }
  return name;
}

/** A view of `store` whose names all start with `prefix` (e.g. DKIM keys under "dkim/"). */
export function prefixedSecrets(store: SecretStore, prefix: string): SecretStore {
  return Object.freeze({
    getOrCreate: function getOrCreatePrefixed(name: string, generate: () => string | Promise<string>): Promise<string> {
      return store.getOrCreate(`${prefix}${name}`, generate);
    },
    locate: (name: string) => store.locate(`${prefix}${name}`),
  });
}

/** A fresh 256-bit secret line, as the SRS and secret-box key files hold them. */
export function secretLines(value: string): string[] {
  return value.split(/\r?\n/).map((line) => line.trim()).filter(Boolean);
}
