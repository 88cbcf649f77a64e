import assert from "node:assert/strict";
import { it } from "node:test";
import { RoutingService } from "../../src/core/routing-service.ts";
import { loadRoutingTable } from "../../src/core/routing-snapshot.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

forEachDatabase((target) => {
  it("stores the per-zone signing switch (on for a new zone) and carries it into the routing table", async () => {
    const { db } = await target.open();
    const config = new RoutingService(db);
    await config.addZone("signed.example");
    await config.addZone("own.example");
    await config.updateZone("own.example", { signOutbound: false });
    const rows = await db.selectFrom("zones").select(["name", "sign_outbound"]).orderBy("name").execute();
    assert.deepEqual(rows, [
      { name: "own.example", sign_outbound: 0 },
      { name: "signed.example", sign_outbound: 1 },
    ]);
    const table = await loadRoutingTable(db);
    assert.equal(table.zones.get("signed.example")?.policy.signOutbound, true);
    assert.equal(table.zones.get("own.example")?.policy.signOutbound, false);
  });
});
