/**
 * The data directory: the SQLite file, and secrets generated on first use (SRS keys). It holds
 * KV values, worker bundles, private forwarding addresses, the activity log, token hashes and
 * keys, so it is private to the service's user: the directory 0700, every file in it 0600.
 *
 * Promises:
 * - `ensureDataDir` creates the directory (and missing parents) 0700, and tightens an existing
 *   one that group or others can reach, reporting the old mode (callers log it); a directory it
 *   cannot tighten (owned by someone else) is an Error naming it and what to do;
 * - `ensurePrivateFile` creates a file 0600 if absent (SQLite then opens it as an empty
 *   database and gives its -wal and -shm the same mode) and tightens an existing one the same way;
 * - secrets are files with mode 0600, never logged. An SRS secret file may hold several lines:
 *   the first signs, all verify (rotation without breaking bounces already in flight).
 * Modes are set explicitly, not left to the process umask (which `mailroute` also sets to 077).
 */
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Called when a directory or file was reachable by group or others and has been tightened. */
export type OnTightened = (path: string, fromMode: number, toMode: number) => void;

export function ensureDataDir(dataDir: string, onTightened?: OnTightened): void {
  mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  tighten(dataDir, PRIVATE_DIR_MODE, onTightened);
}

/** Creates `path` empty with mode 0600 unless it exists; tightens it if it does. */
export function ensurePrivateFile(path: string, onTightened?: OnTightened): void {
  try {
    closeSync(openSync(path, "wx", PRIVATE_FILE_MODE));
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`cannot create "${path}": ${(error as Error).message}`, { cause: error });
  }
  tighten(path, PRIVATE_FILE_MODE, onTightened);
}

/** Tightens `path` if it exists (e.g. an SQLite -wal left by an older version); absent is fine. */
export function tightenIfPresent(path: string, mode: number, onTightened?: OnTightened): void {
  try {
    tighten(path, mode, onTightened);
  } catch (error) {
    if (((error as Error).cause as NodeJS.ErrnoException | undefined)?.code !== "ENOENT") throw error;
  }
}

function tighten(path: string, mode: number, onTightened?: OnTightened): void {
  let current: number;
  try {
    current = statSync(path).mode & 0o777;
  } catch (error) {
    throw new Error(`cannot check the permissions of "${path}": ${(error as Error).message}`, { cause: error });
  }
  // group/other bits only: an owner who made it read-only keeps it so
  if ((current & 0o077) === 0) return;
  const wanted = current & mode;
  try {
    chmodSync(path, wanted);
  } catch (error) {
    throw new Error(
      `"${path}" is readable by other users (mode ${octal(current)}) and cannot be made private: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}; run "chmod ${octal(wanted)} ${path}" as its owner`,
      { cause: error },
    );
  }
  onTightened?.(path, current, wanted);
}

export function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, "0")}`;
}

/** Read a secret file's lines, creating it with one fresh secret when absent. */
export function loadOrCreateSecrets(dataDir: string, name: string, onTightened?: OnTightened): string[] {
  ensureDataDir(dataDir, onTightened);
  const path = join(dataDir, name);
  try {
    const lines = readFileSync(path, "utf8").split(/\r?\n/).map((line) => line.trim()).filter(Boolean);
    // a secret copied in by hand, or by an older version, may be readable by others
    tightenIfPresent(path, PRIVATE_FILE_MODE, onTightened);
    if (lines.length > 0) return lines;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`cannot read secret ${path}: ${(error as Error).message}`);
  }
  const secret = randomBytes(32).toString("base64url");
  try {
    writeFileSync(path, `${secret}\n`, { mode: PRIVATE_FILE_MODE, flag: "wx" });
  } catch (error) {
    // Another process created it first: use theirs so both agree.
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return loadOrCreateSecrets(dataDir, name, onTightened);
    throw error;
  }
  return [secret];
}
