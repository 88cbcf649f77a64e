import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { eventOutcome, normalizeOutcome } from "../../src/analytics/event-outcome.ts";

describe("event outcome vocabulary", () => {
  it("names each fate once: worker-handled mail is 'worker', any 4xx is 'deferred'", () => {
    assert.equal(eventOutcome({ replyCode: 250, relayStatus: "delivered", workerOutcome: null }), "forwarded");
    assert.equal(eventOutcome({ replyCode: 250, relayStatus: "partial", workerOutcome: null }), "forwarded");
    assert.equal(eventOutcome({ replyCode: 250, relayStatus: null, workerOutcome: null }), "dropped");
    // a worker that forwarded or only replied: not "dropped"
    assert.equal(eventOutcome({ replyCode: 250, relayStatus: null, workerOutcome: "forwarded" }), "worker");
    assert.equal(eventOutcome({ replyCode: 250, relayStatus: null, workerOutcome: "replied" }), "worker");
    // a 451 without a relay (worker busy, DNS temperror): not "rejected"
    assert.equal(eventOutcome({ replyCode: 451, relayStatus: null, workerOutcome: "busy" }), "deferred");
    assert.equal(eventOutcome({ replyCode: 451, relayStatus: "temporary", workerOutcome: null }), "deferred");
    assert.equal(eventOutcome({ replyCode: 550, relayStatus: "permanent", workerOutcome: null }), "delivery_failed");
    assert.equal(eventOutcome({ replyCode: 550, relayStatus: null, workerOutcome: "rejected" }), "rejected");
  });

  it("maps the words stored before migration 0008", () => {
    assert.equal(normalizeOutcome("delivered", 250, "forward"), "forwarded");
    assert.equal(normalizeOutcome("partial", 250, "forward"), "forwarded");
    assert.equal(normalizeOutcome("failed", 550, "forward"), "delivery_failed");
    assert.equal(normalizeOutcome("refused", 550, "refused"), "rejected");
    assert.equal(normalizeOutcome("rejected", 451, "worker"), "deferred");
    assert.equal(normalizeOutcome("dropped", 250, "worker"), "worker");
    assert.equal(normalizeOutcome("dropped", 250, "drop"), "dropped");
    assert.equal(normalizeOutcome("deferred", 451, "forward"), "deferred");
  });
});
