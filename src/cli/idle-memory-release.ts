/**
 * Idle memory release: once the service goes quiet after work that grew its resident memory, a
 * full garbage collection and glibc's malloc_trim hand what that work left behind back to the
 * operating system (issue 11; `--release-idle-memory`, on by default).
 *
 * Why: a burst of large messages (or of many small ones) leaves spent buffers waiting for V8's
 * next major collection and, once freed, free pages in the middle of glibc's heap that it keeps.
 * Neither comes back by itself on an idle server: after forty 10 MiB messages the service held
 * ~200 MiB for as long as it stayed idle, ~170 MiB once released (collection −10 MiB, trim −26
 * MiB, ~8 ms), and the next burst starts from there instead of from the high-water mark.
 *
 * Policy, checked every `checkMs` on an unref'd timer (it never keeps the process alive):
 * - quiet: the event loop was busy less than `quietUtilization` of the last interval (no load
 *   to slow down, and nothing is allocating);
 * - grown: its own resident memory (without pages mapped from files: anonymousRss) is at least
 *   `growthBytes` above the lowest it was seen quiet since the last release (or since start), so
 *   an idle server with nothing to give back is left alone;
 * - at most once per `minGapMs` (3 s): a release stops the event loop for ~40 ms (a 30 ms
 *   collection of the SMTP thread's heap, a 9 ms trim, after a 24 MiB message), so bursts a few
 *   seconds apart cost at most ~1 % of a thread that was idle anyway. Ten seconds missed the
 *   quiet between a burst of 10 MiB messages and the next one.
 * Then a full collection (when the process runs with --expose-gc, as the launcher starts it) and
 * the trim; the level reached becomes the new baseline, so a release that frees little is not
 * repeated until memory grows again. Each release is one log line with its figures.
 *
 * A second stage, after a long quiet (`longQuietMs`, a minute, of every interval quiet): V8's
 * memory-reducing collection (the "last-resort" flavour) instead of the regular one, then the
 * trim. The regular collection frees the garbage but V8 keeps the pages it held and its grown
 * young generation for the next burst: after bursts the service sat at ~150–170 MiB once
 * released, against ~120–135 after a memory-reducing one. That one also drops bytecode and the
 * young generation's size, which V8 rebuilds on the next burst: in interleaved runs the first
 * burst of 50 sessions after it was slower in 7 of 10 comparisons on the one-thread node (9 % at
 * the median; the machine's run-to-run noise is as large), so it waits for a quiet that long,
 * which a server under steady or bursty load does not reach, and a mostly idle one (a family's
 * or a homelab's) spends most of its life in. At most once per long quiet, and again only after
 * memory grew `longQuietGrowthBytes` (4 MiB) over what the last one left, a minute apart at least.
 *
 * Each release, and once the first quiet interval after start-up (stage "start_up", that alone),
 * also drops the process's clean pages of its read-only file mappings from its resident set
 * (file-page-release.ts): the Node binary's code and data that start-up or a burst touched and
 * that are not touched again: after start-up, 133 → 78 MiB; a burst takes
 * back only what it uses (50 sessions of 1 KiB: a peak 21–26 MiB lower). ~20 ms the first time
 * (smaps is read and parsed), 3–6 ms after (maps read, the advice).
 *
 * Promises: `check` never throws (a failing collection or trim is logged, once per kind of failure
 * and not retried); `stop` clears the timer.
 */
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import type { Logger } from "../analytics/structured-log.ts";
import { loadFilePageRelease, type FilePageRelease } from "./file-page-release.ts";
import { loadMallocTrim, type MallocTrim } from "./malloc-trim.ts";

const MIB = 1024 * 1024;

export interface MemoryReleaseOptions {
  /** Growth over the lowest quiet level since the last release that makes a release worth it, bytes (default 16 MiB). */
  growthBytes?: number;
  /** The event loop's busy share below which the process counts as quiet (default 0.05). */
  quietUtilization?: number;
  /** How often the policy is checked, ms (default 1,000). */
  checkMs?: number;
  /** The shortest time between two releases, ms (default 3,000). */
  minGapMs?: number;
  /** Continuous quiet after which the memory-reducing release is made, ms (default 60,000). */
  longQuietMs?: number;
  /** Growth over the level the last memory-reducing release left that makes another worth it, bytes (default 4 MiB). */
  longQuietGrowthBytes?: number;
}

/** What the policy reads and calls: the process's own in production, fakes in its unit test. */
export interface MemoryReleaseHost {
  /** Resident set size now, bytes. */
  rss(): number;
  /**
   * The part of it that is the process's own memory, bytes: without the pages mapped from files,
   * which the file page release drops and ordinary work touches again (Linux: RssAnon). Growth is
   * measured on it: the binary's pages coming back are the working set, not memory to give back.
   */
  anonymousRss(): number;
  /** The event loop's busy share since the previous call (0 to 1). */
  loopUtilization(): number;
  /** A full garbage collection, or null when the process was not started with --expose-gc. */
  collect: (() => void) | null;
  /** A memory-reducing full collection (pages and young generation given back), or null: then `collect`. */
  collectReducing: (() => void) | null;
  /** glibc's malloc_trim(0), or null where there is none. */
  trim: MallocTrim | null;
  /** Drops the clean pages of read-only file mappings from the resident set (file-page-release.ts), or null where it cannot. */
  releaseFilePages: FilePageRelease | null;
  /** Monotonic milliseconds. */
  now(): number;
  logger: Logger;
}

export interface MemoryRelease {
  /** "start_up": file pages only, once quiet after start; "quiet": after a burst; "long_quiet": the memory-reducing one after a long quiet. */
  stage: "start_up" | "quiet" | "long_quiet";
  rssBefore: number;
  rssAfter: number;
  collectMs: number | null;
  trimMs: number | null;
  filePagesMs: number | null;
}

export class IdleMemoryRelease {
  readonly #host: MemoryReleaseHost;
  readonly #growthBytes: number;
  readonly #quietUtilization: number;
  readonly #minGapMs: number;
  readonly #longQuietMs: number;
  readonly #longQuietGrowthBytes: number;
  #baseline: number;
  #lastRelease = Number.NEGATIVE_INFINITY;
  /** When the current run of quiet intervals began (the start of the interval first seen quiet); null while busy. */
  #quietSince: number | null = null;
  /** What the last memory-reducing release left, and when; null before the first. */
  #reducedTo: number | null = null;
  #reducedAt = Number.NEGATIVE_INFINITY;
  #checkedAt: number;
  #collect: (() => void) | null;
  #collectReducing: (() => void) | null;
  #trim: MallocTrim | null;
  #releaseFilePages: FilePageRelease | null;
  /** Whether the start-up release is still to come (only where file pages can be released). */
  #startUpPending: boolean;

  constructor(host: MemoryReleaseHost, options: MemoryReleaseOptions = {}) {
    this.#host = host;
    this.#growthBytes = options.growthBytes ?? 16 * MIB;
    this.#quietUtilization = options.quietUtilization ?? 0.05;
    this.#minGapMs = options.minGapMs ?? 3_000;
    this.#longQuietMs = options.longQuietMs ?? 60_000;
    this.#longQuietGrowthBytes = options.longQuietGrowthBytes ?? 4 * MIB;
    this.#collect = host.collect;
    this.#collectReducing = host.collectReducing;
    this.#trim = host.trim;
    this.#releaseFilePages = host.releaseFilePages;
    this.#startUpPending = host.releaseFilePages !== null;
    this.#baseline = host.anonymousRss();
    this.#checkedAt = host.now();
  }

  /** Applies the policy once: the release it made, or null when it made none. */
  check(): MemoryRelease | null {
    // read every interval, so the next one measures only itself
    const utilization = this.#host.loopUtilization();
    const now = this.#host.now();
    const intervalStart = this.#checkedAt;
    this.#checkedAt = now;
    if (utilization >= this.#quietUtilization) {
      this.#quietSince = null;
      return null;
    }
    this.#quietSince ??= intervalStart;
    if (this.#startUpPending) {
      // what start-up touched once: nothing else is worth doing yet (no work has left garbage)
      this.#startUpPending = false;
      return this.#release("start_up");
    }
    if (this.#collect === null && this.#collectReducing === null && this.#trim === null && this.#releaseFilePages === null) return null;
    if (now - this.#lastRelease < this.#minGapMs) return null;
    const own = this.#host.anonymousRss();
    // memory that came down by itself (V8 shrinking its heap) lowers the level growth is measured from
    this.#baseline = Math.min(this.#baseline, own);
    if (own >= this.#baseline + this.#growthBytes) return this.#release("quiet");
    const longQuiet = now - this.#quietSince >= this.#longQuietMs && now - this.#reducedAt >= this.#longQuietMs;
    if (longQuiet && (this.#reducedTo === null || own >= this.#reducedTo + this.#longQuietGrowthBytes)) return this.#release("long_quiet");
    return null;
  }

  #release(stage: MemoryRelease["stage"]): MemoryRelease {
    const rssBefore = this.#host.rss();
    // collect first: the buffers it frees are what the trim then gives back
    const collectMs = stage === "start_up" ? null : this.#timed(stage === "long_quiet" && this.#collectReducing !== null ? "collectReducing" : "collect");
    const trimMs = stage === "start_up" ? null : this.#timed("trim");
    const filePagesMs = this.#timed("releaseFilePages");
    const rssAfter = this.#host.rss();
    const ownAfter = this.#host.anonymousRss();
    this.#lastRelease = this.#host.now();
    this.#baseline = ownAfter;
    if (stage === "long_quiet") {
      this.#reducedTo = ownAfter;
      this.#reducedAt = this.#lastRelease;
    }
    const release = { stage, rssBefore, rssAfter, collectMs, trimMs, filePagesMs };
    this.#host.logger.log("info", "memory_released", {
      stage,
      rss_before_mib: round(rssBefore / MIB),
      rss_after_mib: round(rssAfter / MIB),
      collect_ms: collectMs === null ? null : round(collectMs),
      trim_ms: trimMs === null ? null : round(trimMs),
      file_pages_ms: filePagesMs === null ? null : round(filePagesMs),
    });
    return release;
  }

  /** How long `step` took, ms; null when that step is unavailable or has failed once (then dropped). */
  #timed(step: "collect" | "collectReducing" | "trim" | "releaseFilePages"): number | null {
    const run = step === "collect" ? this.#collect : step === "collectReducing" ? this.#collectReducing : step === "trim" ? this.#trim : this.#releaseFilePages;
    if (run === null) return null;
    const started = this.#host.now();
    try {
      run();
      return this.#host.now() - started;
    } catch (error) {
      if (step === "collect") this.#collect = null;
      else if (step === "collectReducing") this.#collectReducing = null;
      else if (step === "trim") this.#trim = null;
      else this.#releaseFilePages = null;
      this.#host.logger.log("warn", "memory_release_failed", { step, error: error instanceof Error ? error.message : String(error) });
      return null;
    }
  }
}

const round = (value: number) => Math.round(value * 10) / 10;

type ExposedGc = (options?: { type: "major"; execution: "sync"; flavor: "regular" | "last-resort" }) => void;

/**
 * This process's full collections through the `gc()` that --expose-gc puts on globalThis (null
 * each without it): the regular one, and V8's memory-reducing one (its "last-resort" flavour,
 * which also hands back the heap pages and young generation the regular one keeps).
 */
export function processCollections(): { collect: (() => void) | null; collectReducing: (() => void) | null } {
  const gc = (globalThis as { gc?: ExposedGc }).gc;
  if (typeof gc !== "function") return { collect: null, collectReducing: null };
  return {
    collect: () => gc(),
    collectReducing: () => gc({ type: "major", execution: "sync", flavor: "last-resort" }),
  };
}

/** This process's RssAnon (/proc/self/status), bytes; its whole resident set where there is none (not Linux). */
function processAnonymousRss(): number {
  try {
    const kib = /^RssAnon:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "latin1"))?.[1];
    if (kib !== undefined) return Number(kib) * 1024;
  } catch {
    // no procfs: below
  }
  return process.memoryUsage.rss();
}

/** The policy on this process, checked on an unref'd timer; `stop` ends it. */
export function startIdleMemoryRelease(logger: Logger, options: MemoryReleaseOptions = {}): { stop(): void } {
  const loaded = loadMallocTrim();
  const { collect, collectReducing } = processCollections();
  if (loaded.trim === null) logger.log("info", "memory_release_without_trim", { reason: loaded.reason });
  const filePages = loadFilePageRelease();
  if (filePages.release === null) logger.log("info", "memory_release_without_file_pages", { reason: filePages.reason });
  let previous = performance.eventLoopUtilization();
  const release = new IdleMemoryRelease(
    {
      rss: () => process.memoryUsage.rss(),
      anonymousRss: processAnonymousRss,
      loopUtilization: () => {
        const current = performance.eventLoopUtilization();
        const since = performance.eventLoopUtilization(current, previous);
        previous = current;
        return since.utilization;
      },
      collect,
      collectReducing,
      trim: loaded.trim,
      releaseFilePages: filePages.release,
      now: () => performance.now(),
      logger,
    },
    options,
  );
  const timer = setInterval(() => release.check(), options.checkMs ?? 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
