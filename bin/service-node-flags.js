// The Node flags the mailroute service runs with, in one place: the `mailroute` launcher
// (bin/mailroute.js) passes them to the pinned Node, and the benchmarks start the service with
// them, so what is measured is what operators run. (`npm start` and packaging/mailroute.service
// name them on their command lines, which cannot import this file: keep them equal.)
//
// A 4 MiB young generation (V8's default grows it to 16–32 MiB per semi-space under load): the
// per-message garbage is short-lived, so scavenging it sooner costs no measurable CPU, and it
// kept peak RSS at 50 SMTP sessions near 310–330 MiB instead of 420–465 (issue 11, measured
// side by side).
//
// Old generation grown by 60 % per major GC (V8 otherwise picks up to 4x on a fast collector):
// with 50 sessions the main heap's old space filled with promoted per-message garbage up to
// ~105 MiB before V8 collected it. 40 % kept it lowest (peak at 50 sessions, 1 KiB, interleaved:
// 253–356 MiB by default, 198–223 at 40 %), but V8 scales the external-memory limit with it too,
// and at 40 % 10 MiB messages set off a major GC each: 20.7–21.2 msg/s against 23.6–24.1 at 60 %,
// whose 50-session peak is ~10 MiB higher (208–228 against 197–220; issue 11, measured side by
// side, 2 runs each).
//
// No concurrent recompilation: V8 optimises hot functions on the thread that runs them instead of
// on its background threads. Each background compile's zone memory came from that thread's
// malloc arena, which glibc kept: at 50 SMTP sessions the arenas held 33 MiB against 19 without
// it, and peak RSS fell 8–17 MiB in every cell, with throughput unchanged or better (2 rounds
// interleaved, 1 KiB × 10 and × 50 sessions, 100 KiB × 10: 304–336 → 346–371, 396–483 → 472–480,
// 270–289 → 292–299 msg/s; issue 11). The compiles themselves are few once warm.
//
// The stripped-TypeScript loader hook (stripped-typescript.js): modules come from the cache
// scripts/strip-types.js writes, so Node's TypeScript stripper (WebAssembly, resident once
// loaded) stays out of the service and its signing thread: idle RSS 186–188 → 149–151 MiB.
//
// gc() exposed: the idle memory release (src/cli/idle-memory-release.ts) runs a full collection
// before glibc's malloc_trim once the service is quiet after work that grew it, so the buffers
// still waiting for V8 are freed and their pages go back too (after forty 10 MiB messages:
// collection −10 MiB, trim −26 MiB; issue 11). Nothing else calls it.
export const SERVICE_NODE_FLAGS = Object.freeze(["--max-semi-space-size=4", "--heap-growing-percent=60", "--no-concurrent-recompilation", "--expose-gc", `--import=${new URL("./stripped-typescript.js", import.meta.url).href}`]);

// The environment the service starts with, besides its flags (the launcher, `npm start`, the
// systemd unit and the benchmarks set it; an operator's own value wins). Two malloc arenas instead
// of glibc's eight per core: every thread that allocates (SMTP, signing, store writer, V8's and
// libuv's pools) otherwise gets an arena of its own, each keeping what it once held. Peak RSS
// 4–14 MiB lower with 100 KiB × 10 and then 1 KiB × 50 sessions, throughput unchanged (2 rounds
// interleaved, issue 11). Read by glibc when the process starts, so it cannot be set from inside.
export const SERVICE_ENVIRONMENT = Object.freeze({ MALLOC_ARENA_MAX: "2" });
