/**
 * Preloaded with `--import` (through NODE_OPTIONS) into a `mailroute` process by
 * test/cli/start-modules.test.ts: records every module the process's main thread loads, import
 * or require, and on SIGUSR2 writes their URLs as a JSON array to the file LOADED_MODULES_FILE
 * names. A handler of its own, installed before anything loads: the service's SIGTERM handler
 * comes only after its banner, so a SIGTERM sent on seeing the banner can still find none.
 */
import { renameSync, writeFileSync } from "node:fs";
import { registerHooks } from "node:module";
import { isMainThread } from "node:worker_threads";

const file = process.env.LOADED_MODULES_FILE;
if (isMainThread && file !== undefined) {
  const loaded = new Set<string>();
  registerHooks({
    load(url, context, nextLoad) {
      loaded.add(url);
      return nextLoad(url, context);
    },
  });
  process.on("SIGUSR2", () => {
    // whole or not at all: the test reads the file as soon as it exists
    writeFileSync(`${file}.part`, JSON.stringify([...loaded]));
    renameSync(`${file}.part`, file);
  });
}
