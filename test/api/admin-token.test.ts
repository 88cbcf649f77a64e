import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bearerToken, ensureAdminToken, verifyAdminToken } from "../../src/api/admin-token.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

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
