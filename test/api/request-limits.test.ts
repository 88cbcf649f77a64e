import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConcurrencyGate, FixedWindowCounter } from "../../src/api/request-limits.ts";

describe("request limits", () => {
  it("counts requests per key in a fixed window and says how long to wait", () => {
    let now = 1_000_000;
    const counter = new FixedWindowCounter({ limit: 3, windowMs: 10_000 }, () => now);
    assert.deepEqual([counter.hit("a"), counter.hit("a"), counter.hit("a")], [0, 0, 0]);
    assert.equal(counter.hit("a"), 10, "the whole window is left");
    assert.equal(counter.hit("b"), 0, "keys are counted apart");
    now += 4_000;
    assert.equal(counter.hit("a"), 6);
    now += 6_000;
    assert.equal(counter.hit("a"), 0, "a new window starts afresh");
  });

  it("lets at most `max` bodies in at once and frees a place on leave", () => {
    const gate = new ConcurrencyGate(2);
    assert.equal(gate.tryEnter(), true);
    assert.equal(gate.tryEnter(), true);
    assert.equal(gate.tryEnter(), false);
    gate.leave();
    assert.equal(gate.tryEnter(), true);
    gate.leave();
    gate.leave();
    gate.leave();
    assert.equal(gate.tryEnter(), true, "never below zero");
    assert.equal(gate.tryEnter(), true);
    assert.equal(gate.tryEnter(), false);
  });
});
