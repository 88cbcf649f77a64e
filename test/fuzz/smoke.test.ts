/**
 * A few seconds of the SMTP fuzz suite (npm run fuzz runs it for minutes), so npm test
 * exercises it: every round's control message delivered, nothing smuggled, no error log, no
 * uncaught error, RSS bounded.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { runFuzz } from "./smtp-fuzzer.ts";

it("survives a short fuzz run: control mail still delivered, nothing smuggled, no error logged", async () => {
  // small on purpose: npm test runs two files at once on a shared 2-core machine
  const report = await runFuzz({ seconds: 4, maxRounds: 3, concurrency: 4 });
  assert.deepEqual(report.failures, [], `seed ${report.seed}`);
  assert.ok(report.rounds >= 1);
  assert.equal(report.controlMessages, report.rounds);
  assert.equal(report.inputs, report.rounds * 4);
});
