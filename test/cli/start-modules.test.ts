/**
 * `mailroute start` (src/cli/main.ts) loads its own command's module and none of the other
 * commands' code or their dependencies: a service keeps every module it loaded in its heap for
 * as long as it runs (issue 11, RSS). The real command in a child process, observed by a load
 * hook (test/support/main-thread-modules-hook.ts); the other commands still answer, from
 * test/cli/cli-traps.test.ts and flag-help-parity.test.ts.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { freePort } from "../support/free-port.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const HOOK = pathToFileURL(join(ROOT, "test", "support", "main-thread-modules-hook.ts")).href;
const BANNER = "mailroute is receiving mail on";

describe("mailroute start loads only what the service uses", () => {
  let dir: string;
  let loaded: string[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "mailroute-start-modules-"));
    const modulesFile = join(dir, "modules.json");
    const flags = ["--data-dir", join(dir, "data"), "--smtp-host", "127.0.0.1", "--smtp-port", String(await freePort()), "--http-host", "127.0.0.1", "--http-port", String(await freePort()), "--hostname", "mx.mailroute.test"];
    // MAILROUTE_* from the caller's shell must not change what runs
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("MAILROUTE_")));
    const child = spawn(process.execPath, [join(ROOT, "src", "cli", "main.ts"), "start", ...flags], {
      cwd: ROOT,
      env: { ...env, NODE_OPTIONS: `${env.NODE_OPTIONS ?? ""} --import=${HOOK}`.trim(), LOADED_MODULES_FILE: modulesFile },
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      // the banner, not the first greeting: by then the service has loaded what it runs with
      await new Promise<void>((resolve, reject) => {
        let stdout = "";
        let stderr = "";
        child.stdout!.setEncoding("utf8").on("data", (text: string) => {
          stdout += text;
          if (stdout.includes(BANNER)) resolve();
        });
        child.stderr!.setEncoding("utf8").on("data", (text: string) => (stderr += text));
        child.once("exit", (code, signal) => reject(new Error(`mailroute start exited (${code ?? signal}) before its banner: ${stderr}`)));
        setTimeout(() => reject(new Error(`no banner within 20 s: ${stderr}`)), 20_000).unref();
      });
      // the hook writes its list on SIGUSR2 (its own handler, installed before anything loaded)
      child.kill("SIGUSR2");
      for (let round = 0; round < 500 && !existsSync(modulesFile); round++) await sleep(20);
    } finally {
      child.kill("SIGTERM");
      if (child.exitCode === null && child.signalCode === null) await once(child, "exit");
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
