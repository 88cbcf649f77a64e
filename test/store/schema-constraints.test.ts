import assert from "node:assert/strict";
import { it } from "node:test";
import type { Kysely } from "kysely";
import type { Database } from "../../src/store/schema.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

const NOW = "2026-01-02T03:04:05.000Z";

async function addZone(db: Kysely<Database>, id: string, name: string, accountId = "default"): Promise<void> {
  await db
    .insertInto("zones")
    .values({
      id,
      account_id: accountId,
      name,
      enabled: 1,
      support_subaddress: 1,
      dot_insensitive: 0,
      status: "ready",
      created_at: NOW,
      modified_at: NOW,
    })
    .execute();
}

async function addRule(db: Kysely<Database>, id: string, zoneId: string, matchKey: string): Promise<void> {
  await db
    .insertInto("rules")
    .values({
      id,
      zone_id: zoneId,
      name: `rule for ${matchKey}`,
      enabled: 1,
      priority: 0,
      match_key: matchKey,
      matchers: JSON.stringify([{ type: "literal", field: "to", value: matchKey }]),
      actions: JSON.stringify([{ type: "forward", value: ["bob@example.net"] }]),
      created_at: NOW,
      modified_at: NOW,
    })
    .execute();
}

async function addDestination(db: Kysely<Database>, id: string, email: string): Promise<void> {
  await db
    .insertInto("destination_addresses")
    .values({
      id,
      account_id: "default",
      email,
      email_key: email.toLowerCase(),
      verified_at: null,
      created_at: NOW,
      modified_at: NOW,
    })
    .execute();
}

function addEvent(db: Kysely<Database>, rcptTo: string) {
  return db
    .insertInto("events")
    .values({
      received_at: NOW,
      session_id: "s1",
      client_ip: "192.0.2.1",
      message_id: "<m1@example.org>",
      subject: null,
      mail_from: "alice@example.org",
      rcpt_to: rcptTo,
      zone: "example.com",
      action: "forward",
      outcome: "delivered",
      reply_code: 250,
      reply_text: "2.0.0 OK",
      size: 1234,
      duration_ms: 42,
      detail: "{}",
    })
    .returning("id")
    .executeTakeFirstOrThrow();
}

forEachDatabase((target) => {
  it("refuses a second zone with the same name", async () => {
    const { db } = await target.open();
    await addZone(db, "z1", "example.com");
    await assert.rejects(addZone(db, "z2", "example.com"));
    assert.equal((await db.selectFrom("zones").selectAll().execute()).length, 1);
  });

  it("refuses a zone for an account that does not exist", async () => {
    const { db } = await target.open();
    await assert.rejects(addZone(db, "z1", "example.com", "nobody"));
  });

  it("refuses a second rule for the same address in one zone, but allows it in another", async () => {
    const { db } = await target.open();
    await addZone(db, "z1", "example.com");
    await addZone(db, "z2", "example.org");
    await addRule(db, "r1", "z1", "hello@example.com");
    await assert.rejects(addRule(db, "r2", "z1", "hello@example.com"));
    await addRule(db, "r3", "z2", "hello@example.com");
    const rules = await db.selectFrom("rules").select("id").orderBy("id").execute();
    assert.deepEqual(rules, [{ id: "r1" }, { id: "r3" }]);
  });

  it("deletes a zone's rules and catch-all with the zone", async () => {
    const { db } = await target.open();
    await addZone(db, "z1", "example.com");
    await addZone(db, "z2", "example.org");
    await addRule(db, "r1", "z1", "a@example.com");
    await addRule(db, "r2", "z1", "b@example.com");
    await addRule(db, "r3", "z2", "a@example.org");
    await db
      .insertInto("catch_alls")
      .values({ zone_id: "z1", name: "catch-all", enabled: 1, actions: "[]", modified_at: NOW })
      .execute();

    await db.deleteFrom("zones").where("id", "=", "z1").execute();

    assert.deepEqual(await db.selectFrom("rules").select("id").execute(), [{ id: "r3" }]);
    assert.deepEqual(await db.selectFrom("catch_alls").selectAll().execute(), []);
  });

  it("refuses the same destination address twice in an account, whatever its case", async () => {
    const { db } = await target.open();
    await addDestination(db, "d1", "Bob@example.net");
    await assert.rejects(addDestination(db, "d2", "bob@EXAMPLE.net"));
  });

  it("numbers events in insertion order", async () => {
    const { db } = await target.open();
    const first = await addEvent(db, "a@example.com");
    const second = await addEvent(db, "b@example.com");
    assert.equal(typeof first.id, "number");
    assert.ok(second.id > first.id, `${second.id} > ${first.id}`);
    const stored = await db.selectFrom("events").select(["id", "rcpt_to", "size"]).orderBy("id").execute();
    assert.deepEqual(stored, [
      { id: first.id, rcpt_to: "a@example.com", size: 1234 },
      { id: second.id, rcpt_to: "b@example.com", size: 1234 },
    ]);
  });
});
