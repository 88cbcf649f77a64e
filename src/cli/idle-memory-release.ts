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
 * - grown: resident memory is at least `growthBytes` above the lowest it was seen quiet since the
 *   last release (or since start), so an idle server with nothing to give back is left alone;
 * - at most once per `minGapMs` (3 s): a release stops the event loop for ~40 ms (a 30 ms
 *   collection of the SMTP thread's heap, a 9 ms trim, after a 24 MiB message), so bursts a few
 *   seconds apart cost at most ~1 % of a thread that was idle anyway. Ten seconds missed the
 *   quiet between a burst of 10 MiB messages and the next one.
 * Then a full collection (when the process runs with --expose-gc, as the launcher starts it) and
 * the trim; the level reached becomes the new baseline, so a release that frees little is not
 * repeated until memory grows again. Each release is one log line with its figures.
 *
 * Promises: `check` never throws (a failing collection or trim is logged, once per kind of failure
 * and not retried); `stop` clears the timer.
 */
import { performance } from "node:perf_hooks";
import type { Logger } from "../analytics/structured-log.ts";
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
}

/** What the policy reads and calls: the process's own in production, fakes in its unit test. */
export interface MemoryReleaseHost {
  /** Resident set size now, bytes. */
  rss(): number;
  /** The event loop's busy share since the previous call (0 to 1). */
  loopUtilization(): number;
  /** A full garbage collection, or null when the process was not started with --expose-gc. */
  collect: (() => void) | null;
  /** glibc's malloc_trim(0), or null where there is none. */
  trim: MallocTrim | null;
  /** Monotonic milliseconds. */
  now(): number;
  logger: Logger;
}

export interface MemoryRelease {
  rssBefore: number;
  rssAfter: number;
  collectMs: number | null;
  trimMs: number | null;
}

export class IdleMemoryRelease {
  readonly #host: MemoryReleaseHost;
  readonly #growthBytes: number;
  readonly #quietUtilization: number;
  readonly #minGapMs: number;
  #baseline: number;
  #lastRelease = Number.NEGATIVE_INFINITY;
  #collect: (() => void) | null;
  #trim: MallocTrim | null;

  constructor(host: MemoryReleaseHost, options: MemoryReleaseOptions = {}) {
    this.#host = host;
    this.#growthBytes = options.growthBytes ?? 16 * MIB;
    this.#quietUtilization = options.quietUtilization ?? 0.05;
    this.#minGapMs = options.minGapMs ?? 3_000;
    this.#collect = host.collect;
    this.#trim = host.trim;
    this.#baseline = host.rss();
  }

  /** Applies the policy once: the release it made, or null when it made none. */
  check(): MemoryRelease | null {
    // read every interval, so the next one measures only itself
    const utilization = this.#host.loopUtilization();
    if (this.#collect === null && this.#trim === null) return null;
    const now = this.#host.now();
    if (utilization >= this.#quietUtilization || now - this.#lastRelease < this.#minGapMs) return null;
    const rssBefore = this.#host.rss();
    // memory that came down by itself (V8 shrinking its heap) lowers the level growth is measured from
    this.#baseline = Math.min(this.#baseline, rssBefore);
    if (rssBefore < this.#baseline + this.#growthBytes) return null;
    // collect first: the buffers it frees are what the trim then gives back
    const collectMs = this.#timed("collect");
    const trimMs = this.#timed("trim");
    const rssAfter = this.#host.rss();
    this.#lastRelease = this.#host.now();
    this.#baseline = rssAfter;
    const release = { rssBefore, rssAfter, collectMs, trimMs };
    this.#host.logger.log("info", "memory_released", {
      rss_before_mib: round(rssBefore / MIB),
      rss_after_mib: round(rssAfter / MIB),
      collect_ms: collectMs === null ? null : round(collectMs),
      trim_ms: trimMs === null ? null : round(trimMs),
    });
    return release;
  }

  /** How long `step` took, ms; null when that step is unavailable or has failed once (then dropped). */
  #timed(step: "collect" | "trim"): number | null {
    const run = step === "collect" ? this.#collect : this.#trim;
    if (run === null) return null;
    const started = this.#host.now();
    try {
      run();
      return this.#host.now() - started;
    } catch (error) {
      if (step === "collect") this.#collect = null;
      else this.#trim = null;
      this.#host.logger.log("warn", "memory_release_failed", { step, error: error instanceof Error ? error.message : String(error) });
      return null;
    }
  }
}

const round = (value: number) => Math.round(value * 10) / 10;

/** The policy on this process, checked on an unref'd timer; `stop` ends it. */
export function startIdleMemoryRelease(logger: Logger, options: MemoryReleaseOptions = {}): { stop(): void } {
  const loaded = loadMallocTrim();
  const gc = (globalThis as { gc?: () => void }).gc;
  const collect = typeof gc === "function" ? () => gc() : null;
  if (loaded.trim === null) logger.log("info", "memory_release_without_trim", { reason: loaded.reason });
  let previous = performance.eventLoopUtilization();
  const release = new IdleMemoryRelease(
    {
      rss: () => process.memoryUsage.rss(),
      loopUtilization: () => {
        const current = performance.eventLoopUtilization();
        const since = performance.eventLoopUtilization(current, previous);
        previous = current;
        return since.utilization;
      },
      collect,
      trim: loaded.trim,
      now: () => performance.now(),
      logger,
    },
    options,
  );
  const timer = setInterval(() => release.check(), options.checkMs ?? 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
