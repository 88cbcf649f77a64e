import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createEventRecorder } from "../../src/analytics/event-recorder.ts";
import { recentEvents } from "../../src/store/repositories/event-repository.ts";
import { RefusalLog, type RefusalNote } from "../../src/analytics/refusal-log.ts";
import { silentLogger } from "../../src/analytics/structured-log.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

function refusal(session: string, rcpt: string, client = "203.0.113.9", reason = "unknown-recipient"): RefusalNote {
  return { session, client, from: "guesser@bad.test", rcpt, reason, code: 550, line: `550 5.1.1 <${rcpt}>: Recipient address rejected: no such address here` };
}

interface Detail {
  reason: string;
  refused: number;
  reasons: Record<string, number>;
  sample: { rcpt: string; reason: string; code: number }[];
  suppressed?: { sessions: number; refusals: number };
}

describe("refusal log", () => {
  forEachDatabase((target) => {
    it("writes one summary per session with the count, the reasons and a bounded sample, and nothing before the session ends", async () => {
      const { db } = await target.open();
      const log = new RefusalLog(createEventRecorder(db, silentLogger), silentLogger, { sampleSize: 3, flushMs: 60_000 });
      for (let i = 0; i < 30; i++) log.note(refusal("s1", `guess${i}@example.com`, "203.0.113.9", i % 3 === 0 ? "rule-inactive" : "unknown-recipient"));
      await log.flush();
      assert.equal((await recentEvents(db, 100)).length, 0, "a session still open is not written yet");

      log.sessionClosed("s1");
      await log.flush();
      const rows = await recentEvents(db, 100);
      assert.equal(rows.length, 1);
      const [row] = rows;
      assert.equal(row!.rcpt_to, "guess0@example.com");
      assert.equal(row!.action, "refused");
      assert.equal(row!.client_ip, "203.0.113.9");
      assert.equal(row!.reply_code, 550);
      const detail = JSON.parse(row!.detail) as Detail;
      assert.equal(detail.refused, 30);
      assert.equal(detail.reason, "rule-inactive");
      assert.deepEqual(detail.reasons, { "rule-inactive": 10, "unknown-recipient": 20 });
      assert.deepEqual(detail.sample.map((entry) => entry.rcpt), ["guess0@example.com", "guess1@example.com", "guess2@example.com"]);
      await log.close();
    });

    it("files a refusal under our zone, so the zone's account sees it, and one for a domain not ours under none", async () => {
      const { db } = await target.open();
      const log = new RefusalLog(createEventRecorder(db, silentLogger, (zone) => (zone === "example.com" ? "family" : null)), silentLogger, { flushMs: 60_000 });
      log.note({ ...refusal("s1", "nobody@example.com"), zone: "example.com" });
      log.note({ ...refusal("s2", "someone@elsewhere.test", "203.0.113.10", "relay-denied"), zone: null });
      log.sessionClosed("s1");
      log.sessionClosed("s2");
      await log.flush();
      const rows = await db.selectFrom("events").select(["rcpt_to", "zone", "account_id"]).orderBy("rcpt_to").execute();
      assert.deepEqual(rows, [
        { rcpt_to: "nobody@example.com", zone: "example.com", account_id: "family" },
        { rcpt_to: "someone@elsewhere.test", zone: null, account_id: null },
      ]);
      await log.close();
    });

    it("records at most perClientPerMinute summaries per client and carries the count of the rest into its next one", async () => {
      const { db } = await target.open();
      const clock = { now: 1_000_000 };
      const log = new RefusalLog(createEventRecorder(db, silentLogger), silentLogger, { perClientPerMinute: 2, flushMs: 60_000, now: () => clock.now });
      for (let session = 0; session < 10; session++) {
        log.note(refusal(`a${session}`, `x${session}@example.com`));
        log.note(refusal(`a${session}`, `y${session}@example.com`));
        log.sessionClosed(`a${session}`);
      }
      // another client (an IPv6 /64 counts as one) is not affected
      log.note(refusal("b1", "z@example.com", "2001:db8:1:2::7"));
      log.sessionClosed("b1");
      await log.flush();
      let rows = await recentEvents(db, 100);
      assert.equal(rows.filter((row) => row.client_ip === "203.0.113.9").length, 2);
      assert.equal(rows.filter((row) => row.client_ip === "2001:db8:1:2::7").length, 1);

      clock.now += 30_000; // one summary's worth of budget back
      log.note(refusal("a10", "late@example.com"));
      log.sessionClosed("a10");
      await log.flush();
      rows = await recentEvents(db, 100);
      const latest = rows.find((row) => row.rcpt_to === "late@example.com");
      assert.ok(latest);
      assert.deepEqual((JSON.parse(latest.detail) as Detail).suppressed, { sessions: 8, refusals: 16 });
      await log.close();
    });

    it("writes the summary of a session open longer than holdMs, and the rest on close", async () => {
      const { db } = await target.open();
      const clock = { now: 5_000_000 };
      const log = new RefusalLog(createEventRecorder(db, silentLogger), silentLogger, { holdMs: 60_000, flushMs: 60_000, now: () => clock.now });
      log.note(refusal("long", "first@example.com"));
      log.note(refusal("short", "other@example.com", "198.51.100.1"));
      clock.now += 61_000;
      await log.flush();
      assert.deepEqual((await recentEvents(db, 10)).map((row) => row.rcpt_to).sort(), ["first@example.com", "other@example.com"]);
      log.note(refusal("long", "second@example.com"));
      await log.close();
      assert.equal((await recentEvents(db, 10)).filter((row) => row.session_id === "long").length, 2);
    });
  });
});
