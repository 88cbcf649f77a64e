/**
 * Encryption at rest for worker secrets: AES-256-GCM under a key kept in the data directory
 * (`worker-secrets.key`, created 0600 on first use, never logged, never in the database).
 *
 * Promises: a sealed value reveals nothing but its length; it opens only under the same key
 * and the same `context` (account, worker and secret name), so a ciphertext copied to
 * another row fails to open instead of leaking into the wrong worker. The key file may hold
 * several keys, one per line: the first seals, all open (rotation keeps old rows readable).
 * In a PostgreSQL cluster the same lines are a sealed row every node shares (start-service
 * builds the box with `secretBoxFromLines` over store/sealed-secret-store.ts), not a file.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { join } from "node:path";
import { loadOrCreateSecrets } from "../config/data-dir.ts";

export const SECRET_KEY_FILE = "worker-secrets.key";

/** Format tag: lets a later scheme coexist with rows sealed by this one. */
const VERSION = "v1";
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface SecretBox {
  /** `v1.<base64url iv ‖ tag ‖ ciphertext>`; a fresh IV every time. */
  seal(plaintext: string, context: string): string;
  /** Throws (without the plaintext or key) when the value was not sealed here for `context`. */
  open(sealed: string, context: string): string;
}

/** The box for a data directory: reads the key file, creating it on first use. */
export function openSecretBox(dataDir: string): SecretBox {
  return secretBoxFromLines(loadOrCreateSecrets(dataDir, SECRET_KEY_FILE), join(dataDir, SECRET_KEY_FILE));
}

/** The box over key lines (base64url, 32 bytes each; the first seals); `origin` names where they came from in errors. */
export function secretBoxFromLines(lines: readonly string[], origin: string): SecretBox {
  const keys = lines.map((line, index) => {
    const key = Buffer.from(line, "base64url");
    // Name the file and line, never the content.
    if (key.length !== 32) throw new Error(`worker secret key ${origin} line ${index + 1}: expected 32 bytes in base64url, got ${key.length}`);
    return key;
  });
  return createSecretBox(keys);
}

/** A box over given 32-byte keys (the first seals); for tests and for openSecretBox. */
export function createSecretBox(keys: readonly Uint8Array[]): SecretBox {
  const [sealing] = keys;
  if (sealing === undefined) throw new Error("secret box: no key");
  for (const key of keys) if (key.length !== 32) throw new Error("secret box: keys must be 32 bytes (AES-256)");
  return Object.freeze({
    seal: function seal(plaintext: string, context: string): string {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", sealing, iv);
      cipher.setAAD(Buffer.from(context, "utf8"));
      const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      return `${VERSION}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url")}`;
    },
    open: function open(sealed: string, context: string): string {
      const [version, payload] = sealed.split(".", 2);
      if (version !== VERSION || payload === undefined) throw new Error(`secret for ${context}: unknown format`);
      const raw = Buffer.from(payload, "base64url");
      if (raw.length < IV_BYTES + TAG_BYTES) throw new Error(`secret for ${context}: truncated`);
      const iv = raw.subarray(0, IV_BYTES);
      const tag = raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
      const body = raw.subarray(IV_BYTES + TAG_BYTES);
      for (const key of keys) {
        try {
          const decipher = createDecipheriv("aes-256-gcm", key, iv);
          decipher.setAAD(Buffer.from(context, "utf8"));
          decipher.setAuthTag(tag);
          return Buffer.concat([decipher.update(body), decipher.final()]).toString("utf8");
        } catch {
          // wrong key (or tampered row): try the next key
        }
      }
      throw new Error(`secret for ${context}: cannot decrypt (is ${SECRET_KEY_FILE} the one it was sealed with?)`);
    },
  });
}

/**
 * A box that reads (or creates) the key file only when a secret is first sealed or opened:
 * commands that never touch a secret leave the data directory as it was.
 */
export function lazySecretBox(dataDir: string): SecretBox {
  let box: SecretBox | undefined;
  const get = (): SecretBox => (box ??= openSecretBox(dataDir));
  return Object.freeze({
    seal: function seal(plaintext: string, context: string): string {
      return get().seal(plaintext, context);
    },
    open: function open(sealed: string, context: string): string {
      return get().open(sealed, context);
    },
  });
}
