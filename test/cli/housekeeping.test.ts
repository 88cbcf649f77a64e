import assert from "node:assert/strict";
import { it } from "node:test";
import { silentLogger } from "../../src/analytics/structured-log.ts";
import { HOUSEKEEPING_LEASE, startHousekeeping } from "../../src/cli/housekeeping.ts";
import { leaseHolder } from "../../src/store/repositories/lease-repository.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

forEachDatabase((target) => {
  it("purges on one node at a time; the next takes over once the first stops", async () => {
    const [a, b] = await Promise.all([target.open(), target.open()]);
    const old = new Date(Date.now() - 40 * 86_400_000).toISOString();
    const event = { received_at: old, session_id: "s", client_ip: "192.0.2.1", message_id: null, subject: null, mail_from: "a@b.example", rcpt_to: "c@d.example", zone: null, action: "drop", outcome: "dropped", reply_code: 250, reply_text: null, size: 1, duration_ms: 1, detail: "{}", account_id: null };
    await a.db.insertInto("events").values(event).execute();
    const nodeA = startHousekeeping({ db: a.db, nodeId: "node-a", logger: silentLogger, eventRetentionDays: 30 });
    const nodeB = startHousekeeping({ db: b.db, nodeId: "node-b", logger: silentLogger, eventRetentionDays: 30 });
    try {
      assert.equal(await nodeA.runOnce(), true);
      assert.equal((await a.db.selectFrom("events").selectAll().execute()).length, 0, "node A purged the old event");
      assert.equal(await nodeB.runOnce(), false, "node B leaves it to node A");
      assert.equal(await nodeA.runOnce(), true, "node A renews");
      await nodeA.stop();
      assert.equal(await nodeB.runOnce(), true, "node B takes over once node A stopped");
      assert.equal(await leaseHolder(b.db, HOUSEKEEPING_LEASE, new Date()), "node-b");
    } finally {
      await nodeA.stop();
      await nodeB.stop();
    }
  });
});
