/**
 * `mailroute start` (src/cli/main.ts) loads its own command's module and none of the other
 * commands' code or their dependencies: a service keeps every module it loaded in its heap for
 * as long as it runs (issue 11, RSS). The real command in a child process, observed by a load
 * hook (test/support/main-thread-modules-hook.ts); the other commands still answer, from
 * test/cli/cli-traps.test.ts and flag-help-parity.test.ts.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { after, before, describe, it } from "node:test";
import { freePort } from "../support/free-port.ts";
import { MailrouteProcess } from "../support/mailroute-process.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const HOOK = pathToFileURL(join(ROOT, "test", "support", "main-thread-modules-hook.ts")).href;

describe("mailroute start loads only what the service uses", () => {
  let dir: string;
  let loaded: string[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "mailroute-start-modules-"));
    const modulesFile = join(dir, "modules.json");
    // read by MailrouteProcess's child (it passes on all but MAILROUTE_* variables); this test
    // file runs in a process of its own
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ""} --import=${HOOK}`.trim();
    process.env.LOADED_MODULES_FILE = modulesFile;
    const service = new MailrouteProcess({ "data-dir": join(dir, "data"), "http-host": "127.0.0.1", "http-port": String(await freePort()), hostname: "mx.mailroute.test" }, await freePort());
    try {
      await service.start();
      // the hook writes its list on SIGUSR2: its own handler, installed before anything loaded
      assert.ok(service.signal("SIGUSR2"), "the service is running");
      for (let round = 0; round < 500 && !existsSync(modulesFile); round++) await sleep(20);
    } finally {
      await service.stop();
    }
    loaded = JSON.parse(readFileSync(modulesFile, "utf8")) as string[];
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const source = (path: string) => pathToFileURL(join(ROOT, "src", path)).href;
  const packageLoaded = (name: string) => loaded.some((url) => url.includes(`/node_modules/${name}/`));

  it("sees what a start loads (the hook works)", () => {
    for (const path of ["cli/main.ts", "cli/start-command.ts", "cli/start-service.ts"]) assert.ok(loaded.includes(source(path)), `${path} loaded`);
    assert.ok(packageLoaded("commander"), "commander loaded: start parses its flags with it");
  });

  it("loads no other command's module, nor the tree that declares them all", () => {
    for (const path of ["cli/command-tree.ts", "cli/domain-commands.ts", "cli/rule-commands.ts", "cli/doctor-command.ts", "cli/send-command.ts", "cli/worker/worker-command.ts", "cli/worker/deploy-command.ts", "workers/wrangler-config.ts"]) {
      assert.ok(!loaded.includes(source(path)), `${path} loaded by a start`);
    }
  });

  it("loads neither of the Workers CLI's configuration parsers", () => {
    for (const name of ["jsonc-parser", "smol-toml"]) assert.ok(!packageLoaded(name), `${name} loaded by a start`);
  });
});
