// Pure logic behind the views: activity filters → query string, verdict classes, chart
// geometry, and client paths.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NO_FILTERS, activityQuery, verdictClass } from "../src/activity-query.ts";
import { parsePath, pathFor } from "../src/router.ts";
import { chartGeometry } from "../src/summary-chart.ts";

describe("activity query", () => {
  it("sends only the filters that are set, with since relative to now", () => {
    const query = new URLSearchParams(activityQuery({ ...NO_FILTERS, outcome: "rejected", to: " hello@a.test " }, new Date("2026-01-02T00:00:00Z")));
    assert.equal(query.get("since"), "2026-01-01T00:00:00.000Z");
    assert.equal(query.get("outcome"), "rejected");
    assert.equal(query.get("to"), "hello@a.test");
    assert.equal(query.has("from"), false);
    assert.equal(query.has("q"), false);
    assert.equal(query.get("page"), "1");
  });

  it("classes verdicts", () => {
    assert.equal(verdictClass("pass"), "pass");
    assert.equal(verdictClass("fail"), "fail");
    assert.equal(verdictClass("softfail"), "fail");
    assert.equal(verdictClass("none"), "neutral");
    assert.equal(verdictClass(null), "neutral");
  });
});

describe("chart geometry", () => {
  it("scales the peak to the top and zero to the bottom", () => {
    const geometry = chartGeometry([{ start: "a", received: 0 }, { start: "b", received: 4 }, { start: "c", received: 2 }], ["received"], 100, 40);
    assert.equal(geometry.max, 4);
    assert.equal(geometry.lines[0]!.points, "0,40 50,0 100,20");
  });

  it("draws a flat line at the bottom when there is no mail", () => {
    assert.equal(chartGeometry([{ start: "a" }, { start: "b" }], ["rejected"], 10, 10).lines[0]!.points, "0,10 10,10");
  });
});

describe("client paths", () => {
  it("round-trips a zone view and falls back to the overview", () => {
    assert.deepEqual(parsePath(pathFor({ zone: "abc", view: "activity" })), { zone: "abc", view: "activity" });
    assert.deepEqual(parsePath("/zones/abc/nonsense"), { zone: "abc", view: "overview" });
    assert.deepEqual(parsePath("/"), { zone: null, view: "overview" });
  });
});
