import assert from "node:assert/strict";
import { it } from "node:test";
import { acquireLease, leaseHolder, releaseLease } from "../../src/store/repositories/lease-repository.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

const T0 = new Date("2026-12-06T06:00:00Z");
const later = (ms: number) => new Date(T0.getTime() + ms);

forEachDatabase((target) => {
  it("gives a lease to one holder until it expires, then to another", async () => {
    const { db } = await target.open();
    assert.equal(await acquireLease(db, "housekeeping", "node-a", T0, later(60_000)), true);
    assert.equal(await acquireLease(db, "housekeeping", "node-b", later(1_000), later(61_000)), false);
    assert.equal(await leaseHolder(db, "housekeeping", later(1_000)), "node-a");
    // the holder renews
    assert.equal(await acquireLease(db, "housekeeping", "node-a", later(30_000), later(90_000)), true);
    assert.equal(await acquireLease(db, "housekeeping", "node-b", later(61_000), later(121_000)), false);
    // node-a stopped renewing: node-b takes over after expiry
    assert.equal(await acquireLease(db, "housekeeping", "node-b", later(90_000), later(150_000)), true);
    assert.equal(await leaseHolder(db, "housekeeping", later(90_001)), "node-b");
  });

  it("releases only its own lease", async () => {
    const { db } = await target.open();
    await acquireLease(db, "housekeeping", "node-a", T0, later(60_000));
    await releaseLease(db, "housekeeping", "node-b");
    assert.equal(await leaseHolder(db, "housekeeping", T0), "node-a");
    await releaseLease(db, "housekeeping", "node-a");
    assert.equal(await acquireLease(db, "housekeeping", "node-b", T0, later(60_000)), true);
  });

  it("lets exactly one of several nodes asking at once win", async () => {
    const stores = await Promise.all([target.open(), target.open(), target.open(), target.open()]);
    const won = await Promise.all(stores.map((store, index) => acquireLease(store.db, "housekeeping", `node-${index}`, T0, later(60_000))));
    assert.equal(won.filter(Boolean).length, 1, JSON.stringify(won));
  });
});
