/**
 * The benchmark's RSS readers against this machine's /proc: a child's RSS and its anonymous part
 * (RssAnon), and both summed over a process tree (`--processes n`).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { childAnonRss, childRss, processTreeRss } from "../../bench/rss-sampler.ts";

const MIB = 1024 * 1024;

describe("bench RSS readers", () => {
  let parent: ChildProcess;
  let childPid: number;

  before(async () => {
    // a parent holding 64 MiB of its own (anonymous, touched) memory and one child process
    const script = `
      const held = Buffer.alloc(64 * 1024 * 1024, 1);
      const child = require("node:child_process").spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
      child.on("spawn", () => process.stdout.write(String(child.pid) + "\\n"));
      process.on("SIGTERM", () => { child.kill(); process.exit(0); });
      setTimeout(() => held.length, 60000);
    `;
    parent = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    const [line] = (await once(parent.stdout!, "data")) as [Buffer];
    childPid = Number(line.toString().trim());
  });

  after(async () => {
    parent.kill("SIGTERM");
    if (parent.exitCode === null) await once(parent, "exit");
  });

  it("reads a process's anonymous memory as part of its RSS", () => {
    const rss = childRss(parent.pid!)();
    const anon = childAnonRss(parent.pid!)();
    assert.ok(rss !== null && anon !== null, "both readable on Linux");
    // the 64 MiB buffer is anonymous; the Node binary's mapped pages are not
    assert.ok(anon >= 64 * MIB, `anonymous ${anon} holds the 64 MiB buffer`);
    assert.ok(anon < rss, `anonymous ${anon} is less than the RSS ${rss}, which also counts the binary's pages`);
  });

  it("sums either reading over a process and its descendants", () => {
    const own = childAnonRss(parent.pid!)()!;
    const child = childAnonRss(childPid)()!;
    const tree = processTreeRss(parent.pid!, childAnonRss)()!;
    // read at slightly different moments: allow a little movement
    assert.ok(Math.abs(tree - (own + child)) < 4 * MIB, `tree ${tree} ≈ ${own} + ${child}`);
    assert.ok(processTreeRss(parent.pid!)()! > tree, "the RSS tree counts the file-backed pages too");
  });

  it("yields null for a process that does not exist, never 0", () => {
    assert.equal(childAnonRss(2 ** 22 + 1)(), null);
    assert.equal(childRss(2 ** 22 + 1)(), null);
    assert.equal(processTreeRss(2 ** 22 + 1, childAnonRss)(), null);
  });
});
