import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createHash } from "node:crypto";
import { bearerToken } from "../../../src/api/request-auth.ts";
import { ensureAdminToken, verifyAdminToken } from "../../../src/core/tokens/operator-token.ts";
import { forEachDatabase } from "../../support/store-fixtures.ts";

describe("admin token", () => {
  forEachDatabase((target) => {
    it("generates one token once, stores only its hash, and verifies it", async () => {
      const { db } = await target.open();
      const token = await ensureAdminToken(db, null);
      assert.ok(token !== null && token.startsWith("mr_"));
      assert.equal(await ensureAdminToken(db, null), null, "not generated again");
      const stored = await db.selectFrom("settings").selectAll().execute();
      assert.ok(!JSON.stringify(stored).includes(token), "the token itself is not stored");
      assert.equal(await verifyAdminToken(db, token), true);
      assert.equal(await verifyAdminToken(db, `${token}x`), false);
      assert.equal(await verifyAdminToken(db, undefined), false);
    });

    it("salts the stored hash, so the same token never stores the same value twice", async () => {
      const first = (await target.open()).db;
      await ensureAdminToken(first, "same-token");
      const a = (await first.selectFrom("settings").selectAll().where("key", "like", "admin%").execute())[0]!.value;
      await ensureAdminToken(first, "same-token");
      const b = (await first.selectFrom("settings").selectAll().where("key", "like", "admin%").execute())[0]!.value;
      assert.notEqual(a, b);
      assert.ok(!a.includes(createHash("sha256").update("same-token").digest("hex")), "not the bare SHA-256 of the token");
      assert.equal(await verifyAdminToken(first, "same-token"), true);
    });

    it("accepts a token stored unsalted by an older release once, then stores it salted", async () => {
      const { db } = await target.open();
      await db.insertInto("settings").values({ key: "admin_token_sha256", value: createHash("sha256").update("old-token").digest("hex") }).execute();
      assert.equal(await ensureAdminToken(db, null), null, "an existing token is kept");
      assert.equal(await verifyAdminToken(db, "wrong"), false);
      assert.equal(await verifyAdminToken(db, "old-token"), true);
      const keys = (await db.selectFrom("settings").select("key").where("key", "like", "admin%").execute()).map((row) => row.key);
      assert.deepEqual(keys, ["admin_token_salted_sha256"]);
      assert.equal(await verifyAdminToken(db, "old-token"), true);
    });

    it("takes the operator's --admin-token instead", async () => {
      const { db } = await target.open();
      await ensureAdminToken(db, null);
      assert.equal(await ensureAdminToken(db, "chosen-token"), null);
      assert.equal(await verifyAdminToken(db, "chosen-token"), true);
    });
  });

  it("reads a Bearer token from the Authorization header", () => {
    assert.equal(bearerToken("Bearer abc.def"), "abc.def");
    assert.equal(bearerToken("bearer abc"), "abc");
    assert.equal(bearerToken("Basic abc"), undefined);
    assert.equal(bearerToken(undefined), undefined);
  });
});
