import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { it } from "node:test";
import { bumpConfigVersion, readConfigVersion } from "../../src/store/config-version.ts";
import type { OpenStoreOptions } from "../../src/store/open-store.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

const BUMPER = fileURLToPath(new URL("../support/bump-config-version-process.ts", import.meta.url));

forEachDatabase((target) => {
  it("starts at 0 and returns each new version", async () => {
    const { db } = await target.open();
    assert.equal(await readConfigVersion(db), 0);
    assert.equal(await bumpConfigVersion(db), 1);
    assert.equal(await bumpConfigVersion(db), 2);
    assert.equal(await readConfigVersion(db), 2);
  });

  it("bumps inside a caller's transaction and rolls back with it", async () => {
    const { db } = await target.open();
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        assert.equal(await bumpConfigVersion(trx), 1);
        throw new Error("config change failed");
      }),
      { message: "config change failed" },
    );
    assert.equal(await readConfigVersion(db), 0);
  });

  it("counts a bump from each of two stores on the same database (CLI and server)", async () => {
    const server = await target.open();
    const cli = await target.open();
    const versions = await Promise.all([bumpConfigVersion(server.db), bumpConfigVersion(cli.db)]);
    assert.deepEqual(versions.sort(), [1, 2]);
    assert.equal(await readConfigVersion(server.db), 2);
    assert.equal(await readConfigVersion(cli.db), 2);
  });

  it("never hands out the same version to processes migrating and bumping at once", async () => {
    const count = 25;
    // Two CLI-like processes and this one all open the fresh database together, so they
    // also race to run the migrations.
    const children = [startBumper(target.options(), count), startBumper(target.options(), count)];
    const server = await target.open();
    await Promise.all(children.map((child) => child.ready));
    for (const child of children) child.go();
    const mine: number[] = [];
    for (let i = 0; i < count; i++) mine.push(await bumpConfigVersion(server.db));
    const theirs = await Promise.all(children.map((child) => child.versions));

    const all = [...mine, ...theirs.flat()].sort((a, b) => a - b);
    assert.deepEqual(
      all,
      Array.from({ length: 3 * count }, (_, i) => i + 1),
    );
    assert.equal(await readConfigVersion(server.db), 3 * count);
  });
});

function startBumper(options: OpenStoreOptions, count: number) {
  const child = spawn(process.execPath, [BUMPER, JSON.stringify(options), String(count)], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => (stderr += chunk));
  const exited = once(child, "exit").then(([code]) => {
    if (code !== 0) throw new Error(`bumper process exited ${code}: ${stderr}`);
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
      if (stdout.startsWith("ready\n")) resolve();
    });
    exited.then(() => reject(new Error(`bumper process ended before ready: ${stderr}`)), reject);
  });
  return {
    ready,
    go(): void {
      child.stdin.end("go\n");
    },
    versions: exited.then(() => JSON.parse(stdout.slice("ready\n".length)) as number[]),
  };
}
