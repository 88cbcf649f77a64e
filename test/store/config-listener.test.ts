import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bumpConfigVersion, readConfigVersion } from "../../src/store/config-version.ts";
import { ConfigListener, serialTrigger } from "../../src/store/config-listener.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";
import { postgresServer } from "../support/postgres-database.ts";
import { startTcpProxy } from "../support/tcp-proxy.ts";

/** Waits for `check` every 20 ms, at most `ms`. */
async function eventually(ms: number, check: () => boolean): Promise<boolean> {
  for (let waited = 0; waited <= ms; waited += 20) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}

forEachDatabase((target) => {
  if (target.label !== "postgres") return;

  it("hears each committed bump, from another connection, with its version — and nothing before the commit", async () => {
    const writer = await target.open();
    const heard: number[] = [];
    let resyncs = 0;
    const listener = new ConfigListener({ connectionString: target.options().databaseUrl!, onNotify: (version) => heard.push(version), resync: async () => void resyncs++ });
    await listener.start();
    try {
      assert.equal(listener.available, true);
      assert.equal(resyncs, 1);
      await bumpConfigVersion(writer.db);
      assert.ok(await eventually(2000, () => heard.length === 1), "notified");
      assert.deepEqual(heard, [1]);
      // inside a transaction: not delivered until it commits, never when it rolls back
      await writer.db.transaction().execute(async (trx) => {
        await bumpConfigVersion(trx);
        await new Promise((resolve) => setTimeout(resolve, 200));
        assert.deepEqual(heard, [1], "nothing heard before the commit");
      });
      assert.ok(await eventually(2000, () => heard.length === 2));
      await writer.db.transaction().execute(async (trx) => {
        await bumpConfigVersion(trx);
        throw new Error("rolled back");
      }).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(heard, [1, 2]);
      assert.equal(await readConfigVersion(writer.db), 2);
    } finally {
      await listener.stop();
    }
  });

  it("marks the store unavailable when the connection drops, reconnects, and resynchronises", async () => {
    const proxy = await startTcpProxy(postgresServer(), "config_version");
    const url = new URL(target.options().databaseUrl!);
    url.hostname = "127.0.0.1";
    url.port = String(proxy.port);
    const changes: boolean[] = [];
    let resyncs = 0;
    const listener = new ConfigListener({
      connectionString: url.toString(),
      onNotify: () => undefined,
      resync: async () => void resyncs++,
      onAvailability: (available) => changes.push(available),
      heartbeatMs: 100,
      timeoutMs: 500,
      reconnectMinMs: 50,
      reconnectMaxMs: 200,
    });
    await listener.start();
    try {
      proxy.cut();
      assert.ok(await eventually(3000, () => !listener.available), "unavailable after the cut");
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(listener.available, false, "stays unavailable while the database cannot be reached");
      proxy.restore();
      assert.ok(await eventually(5000, () => listener.available), "available again");
      assert.equal(resyncs, 2, "resynchronised once more after reconnecting");
      assert.deepEqual(changes.filter((change, index) => index === 0 || change !== changes[index - 1]), [true, false, true]);
    } finally {
      await listener.stop();
      await proxy.stop();
    }
  });
});

describe("serialTrigger", () => {
  it("never runs two refreshes at once, and runs once more for a trigger that came during a run", async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    let release: () => void = () => undefined;
    const trigger = serialTrigger(async () => {
      running++;
      runs++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise<void>((resolve) => (release = resolve));
      running--;
    }, () => undefined);
    trigger();
    trigger();
    trigger();
    release();
    await eventually(1000, () => runs === 2);
    release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(runs, 2);
    assert.equal(maxRunning, 1);
  });
});
