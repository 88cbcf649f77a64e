import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PendingWrites } from "../../src/store/pending-writes.ts";

function gate(): { promise: Promise<void>; open: () => void; fail: (error: Error) => void } {
  let open!: () => void;
  let fail!: (error: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

describe("PendingWrites", () => {
  it("settles once every write tracked before the call has, and not before", async () => {
    const writes = new PendingWrites();
    const first = gate();
    const second = gate();
    writes.track(first.promise);
    writes.track(second.promise);
    assert.equal(writes.size, 2);
    let settled = false;
    const waiting = writes.settled().then(() => {
      settled = true;
    });
    // a write tracked after the call is not waited for
    const later = gate();
    writes.track(later.promise);
    first.open();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false, "the second write is still in flight");
    second.open();
    await waiting;
    assert.equal(writes.size, 1);
    later.open();
    await writes.settled();
    assert.equal(writes.size, 0);
  });

  it("counts a failed write as settled, and never lets its failure go unhandled", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const writes = new PendingWrites();
      const failing = gate();
      writes.track(failing.promise);
      failing.fail(new Error("disk full"));
      await writes.settled();
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(writes.size, 0);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("gives up waiting after the bound when a write never lands, and says so; says true when all landed", async () => {
    const writes = new PendingWrites();
    const stuck = gate();
    writes.track(stuck.promise);
    const started = performance.now();
    assert.equal(await writes.settledWithin(50), false);
    assert.ok(performance.now() - started >= 45, "it waited for the bound");
    assert.equal(writes.size, 1);
    const landing = writes.settledWithin(10_000);
    stuck.open();
    assert.equal(await landing, true);
    assert.equal(await new PendingWrites().settledWithin(1), true);
  });

  it("settles at once with nothing in flight", async () => {
    assert.equal(await new PendingWrites().settled(), undefined);
  });
});
