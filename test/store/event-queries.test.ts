/**
 * The activity log's per-zone reads on SQLite and PostgreSQL: filters, search with LIKE's
 * own wildcards taken literally, newest-first paging with a total, one event by id only in
 * its own zone and account, and outcome counts per hour and day bucket.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createEventRecorder, purgeOldEvents, type MailEvent } from "../../src/analytics/event-recorder.ts";
import { silentLogger } from "../../src/analytics/structured-log.ts";
import { countZoneOutcomes, findZoneEvent, listZoneEvents } from "../../src/store/repositories/event-repository.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

function event(at: string, rcpt: string, outcome: string, zone: string, subject: string | null = null, spf: string | null = "pass"): MailEvent {
  return { received_at: at, session_id: "s", client_ip: "192.0.2.1", message_id: null, subject, mail_from: "Sender@Origin.test", rcpt_to: rcpt, zone, action: "forward", outcome, reply_code: 250, reply_text: "250 ok", size: 10, duration_ms: 1, detail: "{}", spf, spam_score: 1.5 };
}

describe("event queries", () => {
  forEachDatabase((target) => {
    it("filters, searches, pages and counts one zone's events of one account", async () => {
      const { db } = await target.open();
      const recorder = createEventRecorder(db, silentLogger, (zone) => (zone === "b.example" ? "acct-b" : "acct-a"));
      await recorder.record([
        event("2026-12-01T10:15:00.000Z", "one@a.example", "forwarded", "a.example", "Invoice 100% paid"),
        event("2026-12-01T10:45:00.000Z", "two@a.example", "dropped", "a.example", "Invoice 100 paid"),
        event("2026-12-01T11:05:00.000Z", "one@a.example", "deferred", "a.example", "weekly_report"),
        event("2026-12-02T09:00:00.000Z", "one@a.example", "forwarded", "a.example", "weekly report"),
        event("2026-12-01T10:20:00.000Z", "one@b.example", "forwarded", "b.example", "Invoice 100% paid"),
      ]);
      const a = { account: "acct-a", zone: "a.example" };
      const all = await listZoneEvents(db, a, { limit: 10, offset: 0 });
      assert.equal(all.total, 4);
      assert.deepEqual(all.rows.map((row) => row.received_at.slice(0, 13)), ["2026-12-02T09", "2026-12-01T11", "2026-12-01T10", "2026-12-01T10"], "newest first");
      assert.equal(all.rows[0]!.spf, "pass");
      assert.equal(Number(all.rows[0]!.spam_score), 1.5);
      assert.equal((await listZoneEvents(db, { ...a, outcome: "forwarded" }, { limit: 10, offset: 0 })).total, 2);
      assert.equal((await listZoneEvents(db, { ...a, to: "ONE@a.example" }, { limit: 10, offset: 0 })).total, 3);
      assert.equal((await listZoneEvents(db, { ...a, from: "sender@origin.test" }, { limit: 10, offset: 0 })).total, 4);
      assert.equal((await listZoneEvents(db, { ...a, since: "2026-12-01T11:00:00.000Z", until: "2026-12-02T00:00:00.000Z" }, { limit: 10, offset: 0 })).total, 1);
      // % and _ are literal in a search
      assert.deepEqual((await listZoneEvents(db, { ...a, q: "100%" }, { limit: 10, offset: 0 })).rows.map((row) => row.subject), ["Invoice 100% paid"]);
      assert.deepEqual((await listZoneEvents(db, { ...a, q: "Y_R" }, { limit: 10, offset: 0 })).rows.map((row) => row.subject), ["weekly_report"]);
      const page2 = await listZoneEvents(db, a, { limit: 3, offset: 3 });
      assert.equal(page2.total, 4);
      assert.equal(page2.rows.length, 1);
      // another account's event is not found through this zone
      const foreign = (await listZoneEvents(db, { account: "acct-b", zone: "b.example" }, { limit: 1, offset: 0 })).rows[0]!;
      assert.equal(await findZoneEvent(db, "acct-a", "a.example", foreign.id), undefined);
      assert.equal((await findZoneEvent(db, "acct-b", "b.example", foreign.id))?.rcpt_to, "one@b.example");

      const hourly = await countZoneOutcomes(db, "acct-a", "a.example", "2026-12-01T00:00:00.000Z", 13);
      const key = (rows: { bucket: string; outcome: string; count: number }[]) => rows.map((row) => `${row.bucket} ${row.outcome} ${row.count}`).sort();
      assert.deepEqual(key(hourly), ["2026-12-01T10 dropped 1", "2026-12-01T10 forwarded 1", "2026-12-01T11 deferred 1", "2026-12-02T09 forwarded 1"]);
      // counts come from hourly rollups: `since` is taken at its hour (summaries start on one)
      const daily = await countZoneOutcomes(db, "acct-a", "a.example", "2026-12-01T11:00:00.000Z", 10);
      assert.deepEqual(key(daily), ["2026-12-01 deferred 1", "2026-12-02 forwarded 1"]);
      // purging old events takes their counts with them: a summary never counts what the log no longer has
      assert.equal(await purgeOldEvents(db, new Date("2026-12-02T00:00:00.000Z")), 4);
      assert.deepEqual(key(await countZoneOutcomes(db, "acct-a", "a.example", "2026-12-01T00:00:00.000Z", 13)), ["2026-12-02T09 forwarded 1"]);
    });
  });
});
