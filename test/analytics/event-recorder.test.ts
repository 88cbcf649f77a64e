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
  });
});
