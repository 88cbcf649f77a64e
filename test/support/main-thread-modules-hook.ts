/**
 * Preloaded with `--import` (through NODE_OPTIONS) into a `mailroute` process by
 * test/cli/start-modules.test.ts: records every module the process's main thread loads, import
 * or require, and writes their URLs as a JSON array to the file LOADED_MODULES_FILE
 * names when the process exits (a SIGTERM'd service exits normally).
 */
import { writeFileSync } from "node:fs";
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
  process.once("exit", () => writeFileSync(file, JSON.stringify([...loaded])));
}
