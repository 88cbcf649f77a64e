import assert from "node:assert/strict";
import { it } from "node:test";
import { acceptedDestinations, claimDelivery, ledgerView, purgeExpired, recordAccepted, settleDelivery, settleIntentsOfOwner, storeDeliveryLedger } from "../../src/store/delivery-ledger-store.ts";
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

const SECOND_MS = 1000;
const at = (seconds: number) => new Date(T0.getTime() + seconds * SECOND_MS);
const claimAt = (seconds: number, attemptId: string, settleAfterSeconds = 10) => ({
  fingerprint: "f1",
  destination: "a@x.net",
  attemptId,
  now: at(seconds),
  settlesAt: at(seconds + settleAfterSeconds),
  ttlDays: 7,
});

forEachDatabase((target) => {
  it("grants an intent to one attempt at a time: a second claim loses while the first is live", async () => {
    const { db } = await target.open();
    assert.equal(await claimDelivery(db, claimAt(0, "first")), true);
    assert.equal(await claimDelivery(db, claimAt(5, "second")), false);
    const view = await ledgerView(db, "f1", at(5));
    assert.deepEqual(view.accepted, new Set());
    assert.deepEqual(view.intents, new Map([["a@x.net", { state: "sending", settlesAt: at(10) }]]));
    const [row] = await db.selectFrom("delivery_intents").select(["attempt_id", "state"]).execute();
    assert.deepEqual(row, { attempt_id: "first", state: "sending" });
  });

  it("lets exactly one of many simultaneous claims from two connections win", async () => {
    const [a, b] = [await target.open(), await target.open()];
    const results = await Promise.all(Array.from({ length: 8 }, (_, index) => claimDelivery((index % 2 === 0 ? a : b).db, claimAt(0, `attempt-${index}`))));
    assert.equal(results.filter(Boolean).length, 1, `claims: ${results.join(",")}`);
  });

  it("takes over an intent whose attempt is over for certain (a crashed process left it)", async () => {
    const { db } = await target.open();
    assert.equal(await claimDelivery(db, claimAt(0, "crashed")), true);
    assert.equal(await claimDelivery(db, claimAt(10, "retry")), true, "at settles_at the old attempt no longer counts");
    const rows = await db.selectFrom("delivery_intents").select(["attempt_id", "started_at", "settles_at"]).execute();
    assert.deepEqual(rows, [{ attempt_id: "retry", started_at: at(10).toISOString(), settles_at: at(20).toISOString() }]);
  });

  it("forgets an intent whose dot never left, and marks one whose dot left without a 250 maybe delivered", async () => {
    const { db } = await target.open();
    await claimDelivery(db, claimAt(0, "one"));
    await settleDelivery(db, { fingerprint: "f1", destination: "a@x.net", attemptId: "one", outcome: "not-sent", now: at(1) });
    assert.deepEqual((await ledgerView(db, "f1", at(1))).intents, new Map());

    await claimDelivery(db, claimAt(2, "two"));
    await settleDelivery(db, { fingerprint: "f1", destination: "a@x.net", attemptId: "two", outcome: "maybe-sent", now: at(3) });
    assert.deepEqual((await ledgerView(db, "f1", at(3))).intents, new Map([["a@x.net", { state: "maybe-delivered", settlesAt: at(3) }]]));
    assert.equal(await claimDelivery(db, claimAt(3, "three")), true, "a settled intent does not hold the next attempt");
  });

  it("settles at once, as maybe delivered, the live intents a dead process of the same node id left, and no one else's", async () => {
    const { db } = await target.open();
    const clock = { now: at(0) };
    const dead = storeDeliveryLedger(db, { ttlDays: 7, owner: "node-a-p1", now: () => clock.now });
    const other = storeDeliveryLedger(db, { ttlDays: 7, owner: "node-a-p10", now: () => clock.now });
    assert.equal(await dead.claim("f1", "a@x.net", "one", at(300)), true);
    assert.equal(await dead.claim("f2", "a@x.net", "two", at(300)), true);
    assert.equal(await other.claim("f3", "a@x.net", "three", at(300)), true);
    // the dead attempt's intent holds a retry until its deadline, minutes away
    const restarted = storeDeliveryLedger(db, { ttlDays: 7, owner: "node-a-p1", now: () => clock.now });
    clock.now = at(5);
    assert.equal(await restarted.claim("f1", "a@x.net", "retry-early", at(305)), false);

    assert.equal(await settleIntentsOfOwner(db, "node-a-p1", at(6)), 2, "both of node-a-p1's, not node-a-p10's");
    assert.deepEqual((await ledgerView(db, "f1", at(6))).intents, new Map([["a@x.net", { state: "maybe-delivered", settlesAt: at(6) }]]));
    assert.deepEqual((await ledgerView(db, "f3", at(6))).intents, new Map([["a@x.net", { state: "sending", settlesAt: at(300) }]]));
    clock.now = at(6);
    assert.equal(await restarted.claim("f1", "a@x.net", "retry", at(306)), true, "the retry is sent again now");
  });

  it("lets only the attempt holding an intent settle it", async () => {
    const { db } = await target.open();
    await claimDelivery(db, claimAt(0, "crashed"));
    await claimDelivery(db, claimAt(10, "current"));
    // the crashed attempt's process is long gone, but a slow one settling late must not free the current one
    await settleDelivery(db, { fingerprint: "f1", destination: "a@x.net", attemptId: "crashed", outcome: "not-sent", now: at(11) });
    assert.deepEqual((await ledgerView(db, "f1", at(11))).intents, new Map([["a@x.net", { state: "sending", settlesAt: at(20) }]]));
  });

  it("reports an acceptance instead of the destination's intent, and neither once expired; purges both", async () => {
    const { db } = await target.open();
    await claimDelivery(db, claimAt(0, "one"));
    await claimDelivery(db, { ...claimAt(0, "two"), destination: "b@y.net" });
    await recordAccepted(db, { fingerprint: "f1", destination: "a@x.net", upstreamReply: "250 ok", now: at(1), ttlDays: 7 });
    const view = await ledgerView(db, "f1", at(2));
    assert.deepEqual(view.accepted, new Set(["a@x.net"]));
    assert.deepEqual([...view.intents.keys()], ["b@y.net"]);
    assert.deepEqual(await ledgerView(db, "f1", later(8)), { accepted: new Set(), intents: new Map() });
    assert.equal(await purgeExpired(db, later(8)), 3);
    assert.equal((await db.selectFrom("delivery_intents").selectAll().execute()).length, 0);
  });
});
