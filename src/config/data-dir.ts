/**
 * The data directory: the SQLite file, and secrets generated on first use (SRS keys). Secrets
 * are files with mode 0600 and are never logged. An SRS secret file may hold several lines:
 * the first signs, all verify (rotation without breaking bounces already in flight).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function ensureDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
}

/** Read a secret file's lines, creating it with one fresh secret when absent. */
export function loadOrCreateSecrets(dataDir: string, name: string): string[] {
  ensureDataDir(dataDir);
  const path = join(dataDir, name);
  try {
    const lines = readFileSync(path, "utf8").split(/\r?\n/).map((line) => line.trim()).filter(Boolean);
    if (lines.length > 0) return lines;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`cannot read secret ${path}: ${(error as Error).message}`);
  }
  const secret = randomBytes(32).toString("base64url");
  try {
    writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    // Another process created it first: use theirs so both agree.
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return loadOrCreateSecrets(dataDir, name);
    throw error;
  }
  return [secret];
}
