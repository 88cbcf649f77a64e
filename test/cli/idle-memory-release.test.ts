/**
 * The idle memory release's policy (src/cli/idle-memory-release.ts) on a host whose memory,
 * event-loop load and clock the test sets: when it collects and trims, in which order, what it
 * logs, and what it leaves alone; and this process's two collections, in a real Node process.
 * Its wiring into `mailroute start`, with the real collection and glibc's real malloc_trim, is
 * test/e2e/idle-memory-release.test.ts.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import type { Logger, LogLevel } from "../../src/analytics/structured-log.ts";
import { IdleMemoryRelease, type MemoryReleaseHost } from "../../src/cli/idle-memory-release.ts";

const MODULE_URL = pathToFileURL(join(import.meta.dirname, "..", "..", "src", "cli", "idle-memory-release.ts")).href;

const MIB = 1024 * 1024;

interface Logged {
  level: LogLevel;
  event: string;
  fields: Readonly<Record<string, unknown>>;
}

/** A host the test drives: rss, utilization and time are plain fields; calls are recorded. */
function fakeHost(options: { collect?: boolean | "throws"; collectReducing?: boolean; trim?: boolean | "throws"; releaseFilePages?: boolean | "throws" } = {}) {
  const calls: string[] = [];
  const logged: Logged[] = [];
  const state = { rss: 100 * MIB, utilization: 0, now: 0, freedByCollect: 10 * MIB, freedByCollectReducing: 25 * MIB, freedByTrim: 20 * MIB, freedByFilePages: 8 * MIB, fileBacked: 0 };
  const logger: Logger = {
    log: (level, event, fields = {}) => logged.push({ level, event, fields }),
    child: () => logger,
  };
  const step = (name: string, mode: boolean | "throws" | undefined, freed: () => number) => {
    if (mode === false) return null;
    return () => {
      calls.push(name);
      if (mode === "throws") throw new Error(`${name} broke`);
      const bytes = freed();
      state.rss -= bytes;
      state.now += 5;
      return bytes;
    };
  };
  const host: MemoryReleaseHost = {
    rss: () => state.rss,
    anonymousRss: () => state.rss - state.fileBacked,
    loopUtilization: () => state.utilization,
    collect: step("collect", options.collect, () => state.freedByCollect),
    collectReducing: step("collectReducing", options.collectReducing ?? options.collect !== false, () => state.freedByCollectReducing),
    trim: asTrim(step("trim", options.trim, () => state.freedByTrim)),
    // off unless asked for: the policy's other stages are told apart without it
    releaseFilePages: step("releaseFilePages", options.releaseFilePages ?? false, () => state.freedByFilePages),
    now: () => state.now,
    logger,
  };
  return { host, state, calls, logged };
}

/** malloc_trim's answer: whether it gave anything back. */
const asTrim = (step: (() => number) | null) => (step === null ? null : () => step() > 0);

describe("IdleMemoryRelease", () => {
  it("collects, then trims, once the process is quiet and has grown, and logs what it gave back", () => {
    const { host, state, calls, logged } = fakeHost();
    const release = new IdleMemoryRelease(host);
    state.rss = 150 * MIB;
    state.now = 20_000;
    const made = release.check();
    assert.deepEqual(calls, ["collect", "trim"]);
    assert.deepEqual(made, { stage: "quiet", rssBefore: 150 * MIB, rssAfter: 120 * MIB, collectMs: 5, trimMs: 5, filePagesMs: null });
    assert.deepEqual(logged, [{ level: "info", event: "memory_released", fields: { stage: "quiet", rss_before_mib: 150, rss_after_mib: 120, collect_ms: 5, trim_ms: 5, file_pages_ms: null } }]);
  });

  it("leaves a busy process alone, however much it has grown", () => {
    const { host, state, calls } = fakeHost();
    const release = new IdleMemoryRelease(host);
    state.rss = 400 * MIB;
    state.now = 20_000;
    state.utilization = 0.3;
    assert.equal(release.check(), null);
    state.utilization = 0.05;
    assert.equal(release.check(), null, "5 % busy is not quiet");
    state.utilization = 0.01;
    assert.ok(release.check() !== null, "then quiet: released");
    assert.deepEqual(calls, ["collect", "trim"]);
  });

  it("leaves a quiet process alone until it has grown 16 MiB over its level at start", () => {
    const { host, state, calls } = fakeHost();
    const release = new IdleMemoryRelease(host);
    state.now = 20_000;
    state.rss = 115.9 * MIB;
    assert.equal(release.check(), null);
    state.rss = 116 * MIB;
    assert.ok(release.check() !== null);
    assert.deepEqual(calls, ["collect", "trim"]);
  });

  it("takes the level a release reached as the new baseline, and waits 3 s between releases", () => {
    const { host, state, calls } = fakeHost();
    const release = new IdleMemoryRelease(host);
    state.rss = 200 * MIB;
    state.now = 20_000;
    assert.ok(release.check() !== null);
    assert.equal(state.rss, 170 * MIB);
    // nothing freed this time: 170 + 16 is what it takes now
    state.freedByCollect = 0;
    state.freedByTrim = 0;
    state.now += 3_000;
    state.rss = 185 * MIB;
    assert.equal(release.check(), null, "grown 15 MiB over the last release's level");
    state.rss = 186 * MIB;
    state.now -= 1;
    assert.equal(release.check(), null, "less than 3 s after the last release");
    state.now += 1;
    assert.ok(release.check() !== null);
    assert.deepEqual(calls, ["collect", "trim", "collect", "trim"]);
  });

  it("measures growth from the lowest level seen while quiet, when memory came down by itself", () => {
    const { host, state, calls } = fakeHost();
    const release = new IdleMemoryRelease(host);
    state.now = 20_000;
    state.rss = 90 * MIB;
    assert.equal(release.check(), null, "below the level at start");
    state.rss = 106 * MIB;
    assert.ok(release.check() !== null, "16 MiB over 90, though only 6 over the level at start");
    assert.deepEqual(calls, ["collect", "trim"]);
  });

  it("does not lower that level while busy", () => {
    const { host, state } = fakeHost();
    const release = new IdleMemoryRelease(host);
    state.now = 20_000;
    state.rss = 90 * MIB;
    state.utilization = 0.5;
    assert.equal(release.check(), null);
    state.utilization = 0;
    state.rss = 106 * MIB;
    assert.equal(release.check(), null, "the level stays at start's 100 MiB");
  });

  it("honours the options it is given", () => {
    const { host, state, calls } = fakeHost();
    const release = new IdleMemoryRelease(host, { growthBytes: 1 * MIB, quietUtilization: 0.5, minGapMs: 0 });
    state.rss = 101 * MIB;
    state.utilization = 0.4;
    assert.ok(release.check() !== null);
    assert.deepEqual(calls, ["collect", "trim"]);
  });

  it("trims alone where the process cannot collect (no --expose-gc), and collects alone where there is no malloc_trim", () => {
    const noCollect = fakeHost({ collect: false });
    const trimming = new IdleMemoryRelease(noCollect.host);
    noCollect.state.rss = 150 * MIB;
    noCollect.state.now = 20_000;
    const trimmed = trimming.check();
    assert.deepEqual(noCollect.calls, ["trim"]);
    assert.equal(trimmed?.collectMs, null);
    assert.equal(noCollect.logged[0]?.fields.collect_ms, null);

    const noTrim = fakeHost({ trim: false });
    const collecting = new IdleMemoryRelease(noTrim.host);
    noTrim.state.rss = 150 * MIB;
    noTrim.state.now = 20_000;
    assert.equal(collecting.check()?.trimMs, null);
    assert.deepEqual(noTrim.calls, ["collect"]);
  });

  it("does nothing at all with neither", () => {
    const { host, state, logged } = fakeHost({ collect: false, trim: false });
    const release = new IdleMemoryRelease(host);
    state.rss = 500 * MIB;
    state.now = 20_000;
    assert.equal(release.check(), null);
    state.now = 600_000;
    assert.equal(release.check(), null);
    assert.deepEqual(logged, []);
  });

  it("logs a step that throws once, drops it, and still makes the other", () => {
    const { host, state, calls, logged } = fakeHost({ collect: "throws" });
    const release = new IdleMemoryRelease(host);
    state.rss = 150 * MIB;
    state.now = 20_000;
    const first = release.check();
    assert.equal(first?.collectMs, null);
    assert.equal(first?.trimMs, 5);
    assert.deepEqual(
      logged.map((line) => [line.level, line.event, line.fields.step ?? null]),
      [
        ["warn", "memory_release_failed", "collect"],
        ["info", "memory_released", null],
      ],
    );
    assert.equal(logged[0]!.fields.error, "collect broke");
    state.now += 10_000;
    state.rss += 40 * MIB;
    assert.ok(release.check() !== null);
    assert.deepEqual(calls, ["collect", "trim", "trim"], "the collection is not tried again");
  });

  describe("file pages", () => {
    it("drops them once, alone, at the first quiet interval after start, and logs it as the start-up release", () => {
      const { host, state, calls, logged } = fakeHost({ releaseFilePages: true });
      const release = new IdleMemoryRelease(host);
      state.utilization = 0.4;
      state.now = 1_000;
      assert.equal(release.check(), null, "still busy starting");
      state.utilization = 0;
      state.now = 2_000;
      assert.deepEqual(release.check(), { stage: "start_up", rssBefore: 100 * MIB, rssAfter: 92 * MIB, collectMs: null, trimMs: null, filePagesMs: 5 });
      assert.deepEqual(calls, ["releaseFilePages"]);
      assert.deepEqual(logged, [{ level: "info", event: "memory_released", fields: { stage: "start_up", rss_before_mib: 100, rss_after_mib: 92, collect_ms: null, trim_ms: null, file_pages_ms: 5 } }]);
      state.now = 60_000;
      assert.equal(release.check(), null, "once: nothing has grown since");
      assert.deepEqual(calls, ["releaseFilePages"]);
    });

    it("measures growth from the level the start-up release left", () => {
      const { host, state } = fakeHost({ releaseFilePages: true });
      const release = new IdleMemoryRelease(host);
      state.now = 1_000;
      assert.equal(release.check()?.stage, "start_up");
      state.now = 10_000;
      state.rss = 92 * MIB + 15.9 * MIB;
      assert.equal(release.check(), null);
      state.rss = 92 * MIB + 16 * MIB;
      assert.equal(release.check()?.stage, "quiet");
    });

    it("does not count the file pages work touches again as growth: only the process's own memory is", () => {
      const { host, state, calls } = fakeHost({ releaseFilePages: true });
      const release = new IdleMemoryRelease(host);
      state.now = 1_000;
      assert.equal(release.check()?.stage, "start_up");
      // the binary's pages, touched again by the timers of an idle service
      state.rss += 40 * MIB;
      state.fileBacked += 40 * MIB;
      const made: string[] = [];
      for (let second = 2; second < 180; second++) {
        state.now = second * 1_000;
        const one = release.check();
        if (one !== null) made.push(one.stage);
      }
      assert.deepEqual(made, ["long_quiet"], "no release after a burst, only the one a quiet minute makes, once");
      assert.deepEqual(calls, ["releaseFilePages", "collectReducing", "trim", "releaseFilePages"]);
      state.rss += 16 * MIB;
      state.now += 1_000;
      assert.equal(release.check()?.stage, "quiet", "its own memory grew 16 MiB");
    });

    it("drops them last in every release, after the collection and the trim", () => {
      const { host, state, calls } = fakeHost({ releaseFilePages: true });
      const release = new IdleMemoryRelease(host);
      state.now = 1_000;
      release.check();
      state.rss = 200 * MIB;
      state.now = 10_000;
      assert.deepEqual(release.check(), { stage: "quiet", rssBefore: 200 * MIB, rssAfter: 162 * MIB, collectMs: 5, trimMs: 5, filePagesMs: 5 });
      state.now = 70_000;
      assert.equal(release.check()?.stage, "long_quiet");
      assert.deepEqual(calls, ["releaseFilePages", "collect", "trim", "releaseFilePages", "collectReducing", "trim", "releaseFilePages"]);
    });

    it("logs a drop that throws, and does not try it again", () => {
      const { host, state, calls, logged } = fakeHost({ releaseFilePages: "throws" });
      const release = new IdleMemoryRelease(host);
      state.now = 1_000;
      assert.equal(release.check()?.filePagesMs, null);
      assert.deepEqual(logged.map((line) => [line.level, line.event, line.fields.step ?? null]), [
        ["warn", "memory_release_failed", "releaseFilePages"],
        ["info", "memory_released", null],
      ]);
      state.rss = 200 * MIB;
      state.now = 10_000;
      assert.equal(release.check()?.stage, "quiet");
      assert.deepEqual(calls, ["releaseFilePages", "collect", "trim"]);
    });
  });

  describe("after a long quiet", () => {
    /** One check a second for `seconds`, as the timer makes them; the releases made, by stage. */
    function checkEverySecond(release: IdleMemoryRelease, state: { now: number }, seconds: number): string[] {
      const made: string[] = [];
      for (let i = 0; i < seconds; i++) {
        state.now += 1_000;
        const one = release.check();
        if (one !== null) made.push(one.stage);
      }
      return made;
    }

    it("makes the memory-reducing release once a minute has been quiet, then the trim, and logs its stage", () => {
      const { host, state, calls, logged } = fakeHost();
      const release = new IdleMemoryRelease(host);
      state.rss = 110 * MIB; // grown, but less than the 16 MiB a release after a burst takes
      assert.deepEqual(checkEverySecond(release, state, 59), []);
      assert.deepEqual(checkEverySecond(release, state, 1), ["long_quiet"]);
      assert.deepEqual(calls, ["collectReducing", "trim"]);
      assert.deepEqual(logged.map((line) => [line.event, line.fields.stage, line.fields.rss_before_mib, line.fields.rss_after_mib]), [["memory_released", "long_quiet", 110, 65]]);
    });

    it("counts the minute again from a busy interval", () => {
      const { host, state } = fakeHost();
      const release = new IdleMemoryRelease(host);
      assert.deepEqual(checkEverySecond(release, state, 59), []);
      state.utilization = 0.2;
      assert.deepEqual(checkEverySecond(release, state, 1), []);
      state.utilization = 0;
      assert.deepEqual(checkEverySecond(release, state, 59), []);
      assert.deepEqual(checkEverySecond(release, state, 1), ["long_quiet"]);
    });

    it("follows the release after a burst, and is not repeated until memory grew 4 MiB over its level and another minute passed", () => {
      const { host, state, calls } = fakeHost();
      const release = new IdleMemoryRelease(host);
      state.rss = 200 * MIB;
      assert.deepEqual(checkEverySecond(release, state, 1), ["quiet"], "the burst's release first: 200 → 170 MiB");
      assert.deepEqual(checkEverySecond(release, state, 59), ["long_quiet"], "then the minute's: 170 → 125 MiB");
      assert.deepEqual(calls, ["collect", "trim", "collectReducing", "trim"]);
      state.rss += 3.9 * MIB;
      assert.deepEqual(checkEverySecond(release, state, 120), [], "grown less than 4 MiB: left alone, however long");
      state.rss += 0.1 * MIB;
      assert.deepEqual(checkEverySecond(release, state, 1), ["long_quiet"]);
      state.rss += 10 * MIB;
      assert.deepEqual(checkEverySecond(release, state, 59), [], "a minute apart at least");
      assert.deepEqual(checkEverySecond(release, state, 1), ["long_quiet"]);
    });

    it("makes the regular collection instead where the memory-reducing one is not available", () => {
      const { host, state, calls } = fakeHost({ collectReducing: false });
      const release = new IdleMemoryRelease(host);
      assert.deepEqual(checkEverySecond(release, state, 60), ["long_quiet"]);
      assert.deepEqual(calls, ["collect", "trim"]);
    });

    it("honours its options", () => {
      const { host, state } = fakeHost();
      const release = new IdleMemoryRelease(host, { longQuietMs: 5_000, longQuietGrowthBytes: 1 * MIB });
      assert.deepEqual(checkEverySecond(release, state, 5), ["long_quiet"]);
      state.rss += 1 * MIB;
      assert.deepEqual(checkEverySecond(release, state, 5), ["long_quiet"]);
    });
  });
});

describe("processCollections", () => {
  /** V8's committed heap after each of the two collections, in a Node process run with `flags`. */
  async function heapAfterCollections(flags: readonly string[]): Promise<{ available: boolean; afterRegular: number; afterReducing: number }> {
    const script = `
      import v8 from "node:v8";
      import { processCollections } from ${JSON.stringify(MODULE_URL)};
      const { collect, collectReducing } = processCollections();
      if (collect === null || collectReducing === null) {
        console.log(JSON.stringify({ available: false, afterRegular: 0, afterReducing: 0 }));
      } else {
        // garbage enough to grow the young generation and the old space
        let held = [];
        for (let round = 0; round < 20; round++) {
          held = [];
          for (let i = 0; i < 100000; i++) held.push({ i, text: "x" + i });
        }
        held = null;
        collect();
        const afterRegular = v8.getHeapStatistics().total_heap_size;
        collectReducing();
        console.log(JSON.stringify({ available: true, afterRegular, afterReducing: v8.getHeapStatistics().total_heap_size }));
      }`;
    const { stdout } = await promisify(execFile)(process.execPath, [...flags, "--input-type=module", "--eval", script], { timeout: 30_000 });
    return JSON.parse(stdout.trim().split("\n").at(-1)!) as { available: boolean; afterRegular: number; afterReducing: number };
  }

  it("with --expose-gc, the memory-reducing collection hands back the heap the regular one keeps", async () => {
    // the young generation the service runs with
    const heap = await heapAfterCollections(["--expose-gc", "--max-semi-space-size=4"]);
    assert.equal(heap.available, true);
    assert.ok(heap.afterReducing < heap.afterRegular - 4 * MIB, `committed heap ${(heap.afterRegular / MIB).toFixed(1)} MiB after the regular collection, ${(heap.afterReducing / MIB).toFixed(1)} after the memory-reducing one`);
  });

  it("without --expose-gc, neither", async () => {
    assert.equal((await heapAfterCollections([])).available, false);
  });
});
