import assert from "node:assert/strict";
import { it } from "node:test";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import { createServices } from "../../src/core/services.ts";
import { loadRoutingTable } from "../../src/core/routing-snapshot.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

forEachDatabase((target) => {
  it("stores the per-zone signing switch (on for a new zone) and carries it into the routing table", async () => {
    const store = await target.open();
    const { db } = store;
    const config = createServices(store).forAccount({ account: "default", actor: CLI_OPERATOR });
    await config.zones.create("signed.example");
    await config.zones.create("own.example");
    await config.zones.update("own.example", { signOutbound: false });
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
