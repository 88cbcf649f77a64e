/**
 * The file page release (src/cli/file-page-release.ts): which mappings of /proc/<pid>/smaps it
 * may advise (pure, on a report written here with every kind of mapping a Node process has), and
 * the real madvise through koffi in a Node process of its own on this machine (Linux, glibc): the
 * binary's pages leave the resident set, the pages of its own (relocated data) stay, and the
 * process goes on working.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { candidateLines, cleanFileMappings, loadFilePageRelease } from "../../src/cli/file-page-release.ts";

const MODULE_URL = pathToFileURL(join(import.meta.dirname, "..", "..", "src", "cli", "file-page-release.ts")).href;
const MIB = 1024 * 1024;

/** One mapping as the kernel reports it in smaps, with the fields the release reads. */
function mapping(range: string, perms: string, inode: string, path: string, fields: { rss: number; anonymous?: number; privateDirty?: number; swap?: number }): string {
  return [
    `${range} ${perms} 00000000 fe:01 ${inode}${path === "" ? "" : `                    ${path}`}`,
    `Size:               2048 kB`,
    `Rss:                ${fields.rss} kB`,
    `Pss:                ${fields.rss} kB`,
    `Private_Clean:      ${fields.rss - (fields.privateDirty ?? 0)} kB`,
    `Private_Dirty:      ${fields.privateDirty ?? 0} kB`,
    `Anonymous:          ${fields.anonymous ?? 0} kB`,
    `Swap:               ${fields.swap ?? 0} kB`,
    `VmFlags: rd mr mw me sd`,
  ].join("\n");
}

describe("cleanFileMappings", () => {
  const NODE = "/opt/node/bin/node";
  const smaps = [
    mapping("400000-600000", "r--p", "1234", NODE, { rss: 900 }),
    mapping("600000-800000", "r-xp", "1234", NODE, { rss: 2000 }),
    // RELRO: read-only now, but the dynamic linker wrote its pages: private copies
    mapping("800000-a00000", "r--p", "1234", NODE, { rss: 300, anonymous: 300, privateDirty: 300 }),
    mapping("a00000-c00000", "rw-p", "1234", NODE, { rss: 100, anonymous: 100, privateDirty: 100 }),
    mapping("c00000-e00000", "rw-p", "0", "[heap]", { rss: 5000, anonymous: 5000, privateDirty: 5000 }),
    mapping("7f0000000000-7f0000200000", "rw-p", "0", "", { rss: 4000, anonymous: 4000, privateDirty: 4000 }),
    mapping("7f0000200000-7f0000400000", "r--s", "77", "/data/store.sqlite-shm", { rss: 32 }),
    mapping("7f0000400000-7f0000600000", "r-xp", "55", "/usr/lib/x86_64-linux-gnu/libc.so.6", { rss: 1200 }),
    // once swapped out, a private copy shows as Swap, not Anonymous
    mapping("7f0000600000-7f0000800000", "r--p", "55", "/usr/lib/x86_64-linux-gnu/libc.so.6", { rss: 0, swap: 8 }),
    mapping("7f0000800000-7f0000a00000", "r-xp", "66", "/tmp/replaced.so (deleted)", { rss: 40 }),
    mapping("7ffd00000000-7ffd00002000", "r-xp", "0", "[vdso]", { rss: 8 }),
  ].join("\n");

  it("keeps the private, read-only file mappings that hold no page of their own, with what they have resident", () => {
    assert.deepEqual(cleanFileMappings(smaps), [
      { start: 0x400000, length: 0x200000, residentBytes: 900 * 1024, path: NODE },
      { start: 0x600000, length: 0x200000, residentBytes: 2000 * 1024, path: NODE },
      { start: 0x7f0000400000, length: 0x200000, residentBytes: 1200 * 1024, path: "/usr/lib/x86_64-linux-gnu/libc.so.6" },
    ]);
  });

  it("leaves a mapping whose report lacks a field it needs", () => {
    const truncated = smaps.split("\n").filter((line) => !line.startsWith("Swap:")).join("\n");
    assert.deepEqual(cleanFileMappings(truncated), []);
  });

  it("finds nothing in an empty report", () => {
    assert.deepEqual(cleanFileMappings(""), []);
  });

  it("reads maps' lines as smaps' first lines: the same candidates, by their lines", () => {
    const maps = smaps.split("\n").filter((line) => /^[0-9a-f]+-/.test(line)).join("\n");
    // RELRO and the swapped one are candidates by their lines; only smaps tells their pages apart
    assert.deepEqual(candidateLines(maps).split("\n").map((line) => line.split(" ")[0]), ["400000-600000", "600000-800000", "800000-a00000", "7f0000400000-7f0000600000", "7f0000600000-7f0000800000"]);
  });
});

describe("the file page release's reads", () => {
  const LIB = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  const smapsOf = (mappings: string[]) => mappings.map((range) => mapping(range, "r-xp", "55", LIB, { rss: 64 })).join("\n");
  const mapsOf = (mappings: string[]) => mappings.map((range) => `${range} r-xp 00000000 fe:01 55                    ${LIB}`).join("\n");

  function processWith(ranges: string[]) {
    const reads: string[] = [];
    const advised: [number, number, number][] = [];
    const state = { ranges };
    const load = loadFilePageRelease({
      readProcFile: (path) => {
        reads.push(path);
        return path === "/proc/self/smaps" ? smapsOf(state.ranges) : mapsOf(state.ranges);
      },
      madvise: (address, length, advice) => {
        advised.push([address, length, advice]);
        return 0;
      },
    });
    assert.ok(load.release !== null);
    return { release: load.release, reads, advised, state };
  }

  it("reads smaps once, then only maps while the mappings stay the same, and advises every clean one with MADV_DONTNEED each time", () => {
    const { release, reads, advised } = processWith(["7f0000000000-7f0000200000"]);
    assert.equal(release(), 1);
    assert.equal(release(), 1);
    assert.deepEqual(reads, ["/proc/self/maps", "/proc/self/smaps", "/proc/self/maps"]);
    assert.deepEqual(advised, [
      [0x7f0000000000, 0x200000, 4],
      [0x7f0000000000, 0x200000, 4],
    ]);
  });

  it("reads smaps again once a library was loaded", () => {
    const { release, reads, advised, state } = processWith(["7f0000000000-7f0000200000"]);
    release();
    state.ranges = ["7f0000000000-7f0000200000", "7f0000400000-7f0000600000"];
    assert.equal(release(), 2);
    assert.deepEqual(reads, ["/proc/self/maps", "/proc/self/smaps", "/proc/self/maps", "/proc/self/smaps"]);
    assert.deepEqual(advised.at(-1), [0x7f0000400000, 0x200000, 4]);
  });

  it("counts only the mappings the advice was taken for", () => {
    const reads: string[] = [];
    const load = loadFilePageRelease({ readProcFile: (path) => (reads.push(path), path.endsWith("smaps") ? smapsOf(["7f0000000000-7f0000200000", "7f0000400000-7f0000600000"]) : ""), madvise: (address) => (address === 0x7f0000000000 ? -1 : 0) });
    assert.equal(load.release?.(), 1);
  });
});

describe("loadFilePageRelease", () => {
  interface Figures {
    reason: string | null;
    advised: number;
    /** The Node binary's resident bytes in mappings the release may advise, before and after. */
    cleanBefore: number;
    cleanAfter: number;
    /** The binary's pages of its own (relocated data, .data), before and after: never dropped. */
    ownBefore: number;
    ownAfter: number;
    worksAfter: string;
  }

  it("takes the Node binary's clean pages out of the resident set, keeps its own pages, and the process goes on", async () => {
    const script = `
      import { createHash } from "node:crypto";
      import { readFileSync } from "node:fs";
      import { cleanFileMappings, loadFilePageRelease } from ${JSON.stringify(MODULE_URL)};
      const binary = process.execPath;
      const smaps = () => readFileSync("/proc/self/smaps", "latin1");
      const clean = () => cleanFileMappings(smaps()).filter((m) => m.path === binary).reduce((sum, m) => sum + m.residentBytes, 0);
      // Anonymous pages in the binary's mappings: what the linker and the program wrote
      const own = () => {
        let total = 0, inBinary = false;
        for (const line of smaps().split("\\n")) {
          const head = /^[0-9a-f]+-[0-9a-f]+ \\S+ \\S+ \\S+ \\S+\\s*(.*)$/.exec(line);
          if (head) { inBinary = head[1] === binary; continue; }
          const anonymous = /^Anonymous:\\s+(\\d+) kB$/.exec(line);
          if (anonymous && inBinary) total += Number(anonymous[1]) * 1024;
        }
        return total;
      };
      const loaded = loadFilePageRelease();
      const cleanBefore = clean(), ownBefore = own();
      const advised = loaded.release === null ? 0 : loaded.release();
      const cleanAfter = clean(), ownAfter = own();
      // code and data the release dropped, needed again: read back from the page cache
      const worksAfter = createHash("sha256").update(JSON.stringify({ when: new Intl.DateTimeFormat("en", { timeZone: "UTC" }).format(0) })).digest("hex");
      console.log(JSON.stringify({ reason: loaded.reason, advised, cleanBefore, cleanAfter, ownBefore, ownAfter, worksAfter }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "--eval", script], { timeout: 30_000 });
    const figures = JSON.parse(stdout.trim().split("\n").at(-1)!) as Figures;
    assert.equal(figures.reason, null, "bound on this machine (Linux, glibc)");
    assert.ok(figures.cleanBefore > 8 * MIB, `the binary had ${(figures.cleanBefore / MIB).toFixed(1)} MiB of clean pages resident`);
    assert.ok(figures.advised >= 2, `${figures.advised} mappings advised: the binary's code and read-only data at least`);
    // what the few lines after the release touched came back; nothing near what was there
    assert.ok(figures.cleanAfter < figures.cleanBefore / 2, `${(figures.cleanBefore / MIB).toFixed(1)} → ${(figures.cleanAfter / MIB).toFixed(1)} MiB`);
    assert.ok(figures.ownBefore > 0, "the binary has relocated pages of its own");
    assert.ok(figures.ownAfter >= figures.ownBefore, `its own pages kept: ${figures.ownBefore} → ${figures.ownAfter} bytes`);
    assert.match(figures.worksAfter, /^[0-9a-f]{64}$/);
  });

  it("says why, without throwing, where there is no glibc", async () => {
    const script = `
      Object.defineProperty(process, "platform", { value: "darwin" });
      const { loadFilePageRelease } = await import(${JSON.stringify(MODULE_URL)});
      const loaded = loadFilePageRelease();
      console.log(JSON.stringify({ release: loaded.release, reason: loaded.reason }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "--eval", script], { timeout: 30_000 });
    assert.deepEqual(JSON.parse(stdout.trim()), { release: null, reason: "darwin has no glibc madvise" });
  });
});
