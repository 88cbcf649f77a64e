/**
 * The activity log reads after this node's event writes in flight (store/pending-writes.ts): the
 * sender's reply no longer waits for them, so a read that did not wait could miss the message
 * whose 250 the sender already has. Real stores: a SQLite file and the real PostgreSQL.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { it } from "node:test";
import { createEventRecorder, type MailEvent } from "../../../src/analytics/event-recorder.ts";
import { silentLogger } from "../../../src/analytics/structured-log.ts";
import { CLI_OPERATOR } from "../../../src/core/service-context.ts";
import { createServices } from "../../../src/core/services.ts";
import { PendingWrites } from "../../../src/store/pending-writes.ts";
import { forEachDatabase } from "../../support/store-fixtures.ts";

function event(rcpt: string): MailEvent {
  return { received_at: new Date().toISOString(), session_id: "s", client_ip: "192.0.2.1", message_id: null, subject: "hello", mail_from: "sender@origin.test", rcpt_to: rcpt, zone: "a.example", action: "forward", outcome: "forwarded", reply_code: 250, reply_text: "250 ok", size: 10, duration_ms: 1, detail: "{}" };
}

forEachDatabase((target) => {
  it("reads an event whose write was still in flight when the read was asked for, in every view of the log", async () => {
    const store = await target.open();
    const pendingWrites = new PendingWrites();
    const activity = createServices(store, { pendingWrites }).forAccount({ account: "default", actor: CLI_OPERATOR }).activity;
    const zone = await createServices(store).forAccount({ account: "default", actor: CLI_OPERATOR }).zones.create("a.example");
    const recorder = createEventRecorder(store.db, silentLogger, () => "default");
    // a write that lands a little later, as one handed over after the sender's reply does
    const slowly = (rcpt: string) => pendingWrites.track(sleep(50).then(() => recorder.record([event(rcpt)])));

    slowly("one@a.example");
    assert.deepEqual((await activity.recent()).map((row) => row.rcpt_to), ["one@a.example"]);
    slowly("two@a.example");
    assert.equal((await activity.list(zone.id)).totalCount, 2);
    slowly("three@a.example");
    assert.equal((await activity.rows(zone.id, {}, { limit: 10, oldestFirst: true })).length, 3);
    slowly("four@a.example");
    assert.equal((await activity.summary(zone.id, "24h")).totals.received, 4);
    slowly("five@a.example");
    const [group] = await activity.groups(zone.id, {}, ["action"], 10);
    assert.deepEqual(group, { count: 5, action: "forward" });
    assert.equal(pendingWrites.size, 0);
  });
});
