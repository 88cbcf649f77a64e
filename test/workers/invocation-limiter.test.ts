import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvocationLimiter } from "../../src/workers/invocation-limiter.ts";

describe("InvocationLimiter", () => {
  it("runs at most `max` at once and the rest in arrival order", async () => {
    const limiter = new InvocationLimiter(2);
    let active = 0;
    let peak = 0;
    const order: number[] = [];
    const releases: (() => void)[] = [];
    const jobs = [0, 1, 2, 3, 4].map((n) =>
      limiter.run(async () => {
        active++;
        peak = Math.max(peak, active);
        order.push(n);
        await new Promise<void>((resolve) => releases.push(resolve));
        active--;
        return n;
      }),
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(limiter.running, 2);
    assert.equal(limiter.waiting, 3);
    while (order.length < 5 || releases.length > 0) {
      releases.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(await Promise.all(jobs), [0, 1, 2, 3, 4]);
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
    assert.equal(peak, 2);
    assert.equal(limiter.running, 0);
  });

  it("frees the slot when a job fails", async () => {
    const limiter = new InvocationLimiter(1);
    await assert.rejects(limiter.run(async () => { throw new Error("boom"); }), /boom/);
    assert.equal(await limiter.run(async () => 42), 42);
    assert.equal(limiter.running, 0);
  });

  it("refuses a limit that is not a positive whole number", () => {
    assert.throws(() => new InvocationLimiter(0), RangeError);
  });
});
