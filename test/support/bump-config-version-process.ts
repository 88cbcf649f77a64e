/**
 * A second process bumping the config version, as a CLI does while the server runs.
 * argv: <openStore options as JSON> <count>. Opens the store, prints "ready", waits for a
 * line on stdin (so the parent can start its own bumps at the same moment), bumps `count`
 * times and prints the versions it got as a JSON array.
 */
import { once } from "node:events";
import { bumpConfigVersion } from "../../src/store/config-version.ts";
import { openStore } from "../../src/store/open-store.ts";

const [optionsJson = "{}", countText = "0"] = process.argv.slice(2);
const store = await openStore(JSON.parse(optionsJson));
try {
  process.stdout.write("ready\n");
  await once(process.stdin, "data");
  process.stdin.pause();
  const versions: number[] = [];
  for (let i = 0; i < Number(countText); i++) versions.push(await bumpConfigVersion(store.db));
  process.stdout.write(`${JSON.stringify(versions)}\n`);
} finally {
  await store.close();
}
