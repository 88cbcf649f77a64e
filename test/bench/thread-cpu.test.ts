/**
 * The benchmark's CPU-by-thread readings against this machine's /proc: a process whose named
 * worker thread and whose child process each burn CPU for a bounded time, read as mailroute's
 * side-by-side run reads the service.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { cpuBetween, machineBusyBetween, parseTaskStat, readMachineCpu, readThreadCpu, threadKind, THREAD_KINDS } from "../../bench/thread-cpu.ts";

const BURN_MS = 400;

describe("bench CPU by thread", () => {
  let parent: ChildProcess;

  before(async () => {
    // the worker is named as the signing pool names its threads; the child process's main thread
    // counts as an SMTP thread, as a --processes service process's does
    const burn = `const end = Date.now() + ${BURN_MS}; while (Date.now() < end) {}`;
    const script = `
      const { Worker } = require("node:worker_threads");
      const { spawn } = require("node:child_process");
      const worker = new Worker(${JSON.stringify(`${burn}; setTimeout(() => {}, 60000);`)}, { eval: true, name: "mailroute-signing-0" });
      const child = spawn(process.execPath, ["-e", ${JSON.stringify(`${burn}; process.stdout.write("burnt\\n"); setTimeout(() => {}, 60000);`)}], { stdio: ["ignore", "pipe", "inherit"] });
      let burnt = 0;
      const done = () => { if (++burnt === 2) process.stdout.write("ready\\n"); };
      worker.on("online", () => setTimeout(done, ${BURN_MS + 200}));
      child.stdout.once("data", done);
      process.on("SIGTERM", () => { child.kill(); process.exit(0); });
    `;
    parent = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    await once(parent.stdout!, "data");
  });

  after(async () => {
    parent.kill("SIGTERM");
    if (parent.exitCode === null) await once(parent, "exit");
  });

  it("sums a process tree's CPU by kind of thread: a named worker as signing, each process's main thread as SMTP", () => {
    const cpu = readThreadCpu(parent.pid!);
    assert.ok(cpu !== null, "readable on Linux");
    // each burnt ~400 ms of one core; the clock ticks are 10 ms
    assert.ok(cpu.signing >= BURN_MS * 0.6, `the worker's burn is counted as signing: ${JSON.stringify(cpu)}`);
    assert.ok(cpu.smtp >= BURN_MS * 0.6, `the child process's main thread is counted: ${JSON.stringify(cpu)}`);
    assert.ok(cpu.smtp < BURN_MS * 3 && cpu.signing < BURN_MS * 3, `nothing counted twice: ${JSON.stringify(cpu)}`);
    assert.deepEqual(Object.keys(cpu).sort(), [...THREAD_KINDS].sort());
  });

  it("reads nothing, not zero, for a process that does not exist", () => {
    assert.equal(readThreadCpu(2 ** 22 + 12345), null);
  });

  it("reads a stat line whose thread name holds spaces and parentheses", () => {
    const line = "4242 (V8 Def (a) b) S 1 4242 4242 0 -1 4194368 100 0 0 0 17 5 0 0 20 0 9 0 123 456 789";
    assert.deepEqual(parseTaskStat(line), { name: "V8 Def (a) b", ticks: 22 });
    assert.equal(parseTaskStat("garbage"), null);
  });

  it("tells kinds apart by the names Node and mailroute give their threads", () => {
    assert.equal(threadKind("node", true), "smtp");
    assert.equal(threadKind("mailroute-signi", false), "signing");
    assert.equal(threadKind("mailroute-store", false), "store-writer");
    assert.equal(threadKind("libuv-worker", false), "libuv-pool");
    assert.equal(threadKind("V8Worker", false), "v8-helpers");
    assert.equal(threadKind("node", false), "other");
  });

  it("never reports less than nothing between readings, and the machine's busy share between 0 and 1", async () => {
    const before = { smtp: 10, signing: 5, "store-writer": 0, "libuv-pool": 3, "v8-helpers": 1, other: 0 };
    // a thread that exited between the readings took its time with it
    assert.deepEqual(cpuBetween(before, { ...before, smtp: 25, signing: 2 }), { smtp: 15, signing: 0, "store-writer": 0, "libuv-pool": 0, "v8-helpers": 0, other: 0 });
    const first = readMachineCpu();
    const end = Date.now() + 200;
    while (Date.now() < end) {
      // busy on this core, so the share cannot read 0
    }
    const busy = machineBusyBetween(first, readMachineCpu());
    assert.ok(busy !== null && busy > 0 && busy <= 1, String(busy));
    assert.equal(machineBusyBetween(first, first), null);
  });
});
