/**
 * File page release: the pages this process maps read-only from files (the Node binary's code
 * and read-only data, the shared libraries), taken out of its resident set with
 * madvise(MADV_DONTNEED), so that only those it touches again come back (issue 11, RSS).
 *
 * Why: the Node binary is ~59 MiB of the service's resident memory after start (code 36, read-only
 * data 23: V8, OpenSSL, ICU, SQLite, Node's own JavaScript sources), and a 50-session burst
 * touches only ~33 MiB of it again. The rest was touched once, by start-up (snapshot
 * deserialisation, module sources compiled once, migrations), or by work done once in a while (the
 * optimising compiler while code warms up). The kernel would drop those pages only under memory
 * pressure; dropping them when the service is quiet keeps its resident set to what it uses: in
 * the side-by-side bench 50 sessions of 1 KiB peaked at 135 MiB against 161 (only those cells,
 * 2 runs each, interleaved) and at 155 against 173 in a full run, throughput unchanged within the
 * noise. Nothing is lost: the
 * pages stay in the page cache (a later touch is a minor fault) or, if the kernel reclaimed them,
 * are read again from the file, as after any reclaim.
 *
 * Safety: only mappings that are private, not writable, backed by a file and hold no page of
 * their own (smaps' Anonymous, Private_Dirty and Swap all 0): every resident page is then the
 * file's bytes, and dropping it changes nothing a thread could read. A mapping the dynamic linker
 * relocated (RELRO: read-only, but its pages are private copies) is never one of them, nor is a
 * writable or shared one (.data, SQLite's shared memory, anything V8 allocated).
 *
 * Promises: `cleanFileMappings` and `candidateLines` are pure (smaps or maps text in);
 * `loadFilePageRelease` gives a function that advises every such mapping of this process and
 * returns how many it advised, or the reason it cannot (not Linux, no glibc, koffi missing);
 * neither throws, and a mapping that vanished between the read and the advice is skipped.
 */
import { readFileSync } from "node:fs";
import { glibcFunction } from "./glibc-function.ts";

export interface FileMapping {
  start: number;
  length: number;
  /** Its resident bytes when smaps was read. */
  residentBytes: number;
  path: string;
}

// <start>-<end> <perms> <offset> <dev> <inode> <path>: a line of maps, the first line of each mapping in smaps
const MAPPING_HEAD = /^([0-9a-f]+)-([0-9a-f]+) ([-rwxsp]{4}) [0-9a-f]+ [0-9a-f]+:[0-9a-f]+ (\d+)\s*(.*)$/;
// the fields that would mean a page of the mapping's own (a private copy), which the advice would discard
const OWN_PAGES = ["Anonymous", "Private_Dirty", "Swap"] as const;
const FIELDS: readonly string[] = ["Rss", ...OWN_PAGES];

/** A mapping the advice may be given to, going by its maps line alone: private, not writable, from a file. */
function candidate(head: RegExpExecArray): boolean {
  const [, , , perms, inode, path] = head as unknown as [string, string, string, string, string, string];
  // an absolute path with an inode: not [heap], [vdso] or anonymous memory; a deleted file is left alone
  return perms[1] === "-" && perms[3] === "p" && inode !== "0" && path.startsWith("/") && !path.endsWith(" (deleted)");
}

/** The mappings in `smaps` (the text of /proc/<pid>/smaps) whose resident pages are all the file's own bytes. */
export function cleanFileMappings(smaps: string): FileMapping[] {
  const found: FileMapping[] = [];
  let current: (FileMapping & { fields: Map<string, number> }) | null = null;
  const close = () => {
    // a field missing from the kernel's report is not known to be zero
    if (current === null || !OWN_PAGES.every((name) => current!.fields.get(name) === 0)) return;
    found.push({ start: current.start, length: current.length, residentBytes: (current.fields.get("Rss") ?? 0) * 1024, path: current.path });
  };
  for (const line of smaps.split("\n")) {
    const head = MAPPING_HEAD.exec(line);
    if (head !== null) {
      close();
      const start = Number.parseInt(head[1]!, 16);
      current = candidate(head) ? { start, length: Number.parseInt(head[2]!, 16) - start, residentBytes: 0, path: head[5]!, fields: new Map() } : null;
      continue;
    }
    if (current === null) continue;
    // "Name:   123 kB"
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    if (FIELDS.includes(name)) current.fields.set(name, Number.parseInt(line.slice(colon + 1), 10));
  }
  close();
  return found;
}

/** The lines of `maps` (the text of /proc/<pid>/maps) that name a candidate mapping: what decides whether smaps must be read again. */
export function candidateLines(maps: string): string {
  return maps
    .split("\n")
    .filter((line) => {
      const head = MAPPING_HEAD.exec(line);
      return head !== null && candidate(head);
    })
    .join("\n");
}

/** Advises this process's clean file mappings; returns how many it advised. */
export type FilePageRelease = () => number;

export type FilePageReleaseLoad = { release: FilePageRelease; reason: null } | { release: null; reason: string };

const MADV_DONTNEED = 4;

export interface FilePageReleaseParts {
  /** Reads /proc/self/maps or /proc/self/smaps. */
  readProcFile?: (path: string) => string;
  /** madvise(2); default: glibc's, through koffi. */
  madvise?: (address: number, length: number, advice: number) => number;
}

/**
 * smaps is read only when the candidate mappings changed since the last release (a library loaded
 * or unloaded): reading it walks every mapping's page tables (3–6 ms here), maps does not (~0.5
 * ms), and whether a read-only mapping holds pages of its own cannot change while its permissions
 * stay the same. `parts` are for tests (what was read, what was advised).
 */
export function loadFilePageRelease(parts: FilePageReleaseParts = {}): FilePageReleaseLoad {
  const readProcFile = parts.readProcFile ?? ((path: string) => readFileSync(path, "latin1"));
  let madvise = parts.madvise;
  if (madvise === undefined) {
    const bound = glibcFunction<(address: number, length: number, advice: number) => number>("madvise", "int madvise(uintptr_t addr, size_t length, int advice)");
    if (bound.call === null) return { release: null, reason: bound.reason };
    madvise = bound.call;
  }
  const advise = madvise;
  let known: { lines: string; mappings: FileMapping[] } | null = null;
  return {
    release: () => {
      const lines = candidateLines(readProcFile("/proc/self/maps"));
      if (known === null || known.lines !== lines) known = { lines, mappings: cleanFileMappings(readProcFile("/proc/self/smaps")) };
      let advised = 0;
      // non-zero: the mapping changed since it was read (unloaded); nothing was dropped
      for (const mapping of known.mappings) if (advise(mapping.start, mapping.length, MADV_DONTNEED) === 0) advised++;
      return advised;
    },
    reason: null,
  };
}
