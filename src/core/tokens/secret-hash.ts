/**
 * Salted SHA-256 for bearer secrets. The secrets are 256 random bits, so a slow KDF would
 * add only latency to every API request; the per-secret salt means equal secrets never
 * share a stored value and a precomputed table is useless. Comparison is constant-time.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export interface SaltedHash {
  salt: string;
  hash: string;
}

export function hashSecret(secret: string, salt: string = randomBytes(16).toString("hex")): SaltedHash {
  return { salt, hash: createHash("sha256").update(salt, "utf8").update("\u0000").update(secret, "utf8").digest("hex") };
}

export function secretMatches(secret: string, stored: SaltedHash): boolean {
  const presented = Buffer.from(hashSecret(secret, stored.salt).hash, "hex");
  const expected = Buffer.from(stored.hash, "hex");
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}
