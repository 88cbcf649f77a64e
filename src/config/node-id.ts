/**
 * This node's id, carried by every event and log line so an operator can tell which of several
 * nodes behind one MX handled a message. `--node-id` wins; otherwise the id is the machine's
 * short host name plus a random suffix, made once and kept in `<dataDir>/node-id`.
 *
 * Why persisted and suffixed: the id must stay the same across restarts (events of one node
 * group together over time), and must differ between nodes even when they share a host name
 * (containers cloned from one image, several nodes on one machine as in the tests) — without
 * any coordination through the database. The data directory is per node in cluster mode (it
 * still holds TLS material and spools), so it is where a node remembers who it is.
 *
 * Promises: concurrent first starts on one data directory agree (exclusive create, then read
 * back); the id is never empty and matches NODE_ID.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { NODE_ID } from "./settings.ts";
import { PRIVATE_FILE_MODE } from "./data-dir.ts";

export const NODE_ID_FILE = "node-id";

export function resolveNodeId(given: string | null, dataDir: string): string {
  if (given !== null) return given;
  const path = join(dataDir, NODE_ID_FILE);
  const existing = readIfPresent(path);
  if (existing !== null) return existing;
  const made = `${shortHostname()}-${randomBytes(3).toString("hex")}`;
  try {
    writeFileSync(path, `${made}\n`, { mode: PRIVATE_FILE_MODE, flag: "wx" });
    return made;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`node id ${path}: ${(error as Error).message}`, { cause: error });
    return readIfPresent(path) ?? made;
  }
}

function readIfPresent(path: string): string | null {
  try {
    const text = readFileSync(path, "utf8").trim();
    // empty: another process created it and has not written yet
    if (text === "") return null;
    if (!NODE_ID.test(text)) throw new Error(`node id ${path}: "${text.slice(0, 80)}" is not a node id (letters, digits, ".", "_", "-"); fix it or pass --node-id`);
    return text;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

function shortHostname(): string {
  const label = hostname().split(".")[0]!.replace(/[^A-Za-z0-9-]/g, "").slice(0, 40);
  return label === "" ? "node" : label;
}

/**
 * The id of service process `slot` (1-based) of a node running `--processes n`: `<node id>-p<slot>`.
 * Each process is a node of its own on the shared store (queue claims, leases and events are
 * per node id, and a starting node releases its own old claims), and the slot — not the pid —
 * names it, so a process the supervisor restarts takes over exactly what its predecessor held.
 * The base is shortened when needed so the result still matches NODE_ID.
 */
export function processNodeId(base: string, slot: number): string {
  const suffix = `-p${slot}`;
  return `${base.slice(0, 64 - suffix.length)}${suffix}`;
}
