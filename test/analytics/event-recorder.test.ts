import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { silentLogger } from "../../src/analytics/structured-log.ts";
import { createEventRecorder, purgeOldEvents, type MailEvent } from "../../src/analytics/event-recorder.ts";
import { recentEvents } from "../../src/store/repositories/event-repository.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

function event(receivedAt: string, rcpt: string): MailEvent {
  return { received_at: receivedAt, session_id: "s", client_ip: "192.0.2.1", message_id: null, subject: null, mail_from: "a@x.test", rcpt_to: rcpt, zone: null, action: "forward", outcome: "delivered", reply_code: 250, reply_text: "250 ok", size: 10, duration_ms: 1, detail: "{}" };
}

describe("event recorder", () => {
  forEachDatabase((target) => {
    it("records events, lists the newest first, and purges those past retention", async () => {
      const { db } = await target.open();
      const recorder = createEventRecorder(db, silentLogger);
      await recorder.record([event("2026-01-01T00:00:00.000Z", "old@example.com"), event("2026-11-01T00:00:00.000Z", "new@example.com")]);
      assert.deepEqual((await recentEvents(db, 10)).map((e) => e.rcpt_to), ["new@example.com", "old@example.com"]);
      assert.equal(await purgeOldEvents(db, new Date("2026-06-01T00:00:00.000Z")), 1);
      assert.deepEqual((await recentEvents(db, 10)).map((e) => e.rcpt_to), ["new@example.com"]);
    });

    it("writes messages recorded together in one go, each record resolving once its own rows are readable", async () => {
      const { db } = await target.open();
      const recorder = createEventRecorder(db, silentLogger);
      const rcpts = Array.from({ length: 40 }, (_, i) => `r${i}@example.com`);
      // recorded in one turn, as concurrent sessions finishing together do
      await Promise.all(
        rcpts.map(async (rcpt) => {
          await recorder.record([event("2026-11-01T00:00:00.000Z", rcpt)]);
          assert.ok((await recentEvents(db, 100)).some((e) => e.rcpt_to === rcpt), `${rcpt} readable when its record resolved`);
        }),
      );
      assert.equal((await recentEvents(db, 100)).length, 40);
    });

    it("loses only the refused message's events when the store refuses one row of a batch", async () => {
      const { db } = await target.open();
      const failures: unknown[] = [];
      const logger = { ...silentLogger, log: (level: string, event: string, fields: unknown) => void (event === "event_record_failed" && failures.push(fields)) };
      const recorder = createEventRecorder(db, logger as typeof silentLogger);
      const broken = { ...event("2026-11-01T00:00:00.000Z", "bad@example.com"), action: null as unknown as string };
      await Promise.all([
        recorder.record([event("2026-11-01T00:00:00.000Z", "a@example.com")]),
        recorder.record([broken]),
        recorder.record([event("2026-11-01T00:00:00.000Z", "b@example.com"), event("2026-11-01T00:00:00.000Z", "c@example.com")]),
      ]);
      assert.deepEqual((await recentEvents(db, 10)).map((e) => e.rcpt_to).sort(), ["a@example.com", "b@example.com", "c@example.com"]);
      assert.equal(failures.length, 1, "one failure logged, for the refused message alone");
    });
  });
});
