import assert from "node:assert/strict";
import { it } from "node:test";
import { acceptedDestinations, purgeExpired, recordAccepted } from "../../src/store/delivery-ledger-store.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
const T0 = new Date("2026-03-01T12:00:00.000Z");
const later = (days: number) => new Date(T0.getTime() + days * DAY_MS);

forEachDatabase((target) => {
  it("reports the destinations that accepted a message", async () => {
    const { db } = await target.open();
    await recordAccepted(db, { fingerprint: "f1", destination: "a@x.net", upstreamReply: "250 ok", now: T0, ttlDays: 7 });
    await recordAccepted(db, { fingerprint: "f1", destination: "b@y.net", upstreamReply: "250 ok", now: T0, ttlDays: 7 });
    await recordAccepted(db, { fingerprint: "f2", destination: "c@z.net", upstreamReply: "250 ok", now: T0, ttlDays: 7 });
    assert.deepEqual(await acceptedDestinations(db, "f1", later(1)), new Set(["a@x.net", "b@y.net"]));
    assert.deepEqual(await acceptedDestinations(db, "unknown", later(1)), new Set());
  });

  it("records the same acceptance twice without error, keeping one entry with the latest reply", async () => {
    const { db } = await target.open();
    await recordAccepted(db, { fingerprint: "f1", destination: "a@x.net", upstreamReply: "250 first", now: T0, ttlDays: 7 });
    await recordAccepted(db, { fingerprint: "f1", destination: "a@x.net", upstreamReply: "250 again", now: later(1), ttlDays: 7 });
    const rows = await db.selectFrom("delivery_ledger").selectAll().execute();
    assert.deepEqual(rows, [
      {
        fingerprint: "f1",
        destination: "a@x.net",
        accepted_at: later(1).toISOString(),
        expires_at: later(8).toISOString(),
        upstream_reply: "250 again",
      },
    ]);
  });

  it("ignores entries once they expire, and purges only those", async () => {
    const { db } = await target.open();
    await recordAccepted(db, { fingerprint: "f1", destination: "short@x.net", upstreamReply: "250", now: T0, ttlDays: 1 });
    await recordAccepted(db, { fingerprint: "f1", destination: "long@x.net", upstreamReply: "250", now: T0, ttlDays: 5 });

    assert.deepEqual(await acceptedDestinations(db, "f1", later(0.5)), new Set(["short@x.net", "long@x.net"]));
    // At exactly its expiry an entry no longer counts.
    assert.deepEqual(await acceptedDestinations(db, "f1", later(1)), new Set(["long@x.net"]));

    assert.equal(await purgeExpired(db, later(2)), 1);
    assert.deepEqual(
      await db.selectFrom("delivery_ledger").select("destination").execute(),
      [{ destination: "long@x.net" }],
    );
  });

  it("brings an expired but unpurged entry back when the destination accepts again", async () => {
    const { db } = await target.open();
    await recordAccepted(db, { fingerprint: "f1", destination: "a@x.net", upstreamReply: "250", now: T0, ttlDays: 1 });
    await recordAccepted(db, { fingerprint: "f1", destination: "a@x.net", upstreamReply: "250", now: later(3), ttlDays: 1 });
    assert.deepEqual(await acceptedDestinations(db, "f1", later(3.5)), new Set(["a@x.net"]));
  });

  it("refuses a ttl that is not a positive number of days", async () => {
    const { db } = await target.open();
    await assert.rejects(
      recordAccepted(db, { fingerprint: "f1", destination: "a@x.net", upstreamReply: "250", now: T0, ttlDays: 0 }),
      { message: "delivery ledger: ttlDays 0 is not a positive number of days" },
    );
  });
});
