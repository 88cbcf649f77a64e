/**
 * rulesForRouting, the routing table's read of every rule, on both databases: each rule exactly
 * once over all pages, deleted ones leaving no hole or repeat; on SQLite in the order rows are
 * stored (rowid), not the id order that made every row a seek with random ids (issue 11,
 * start-up); on PostgreSQL in id order.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { CLI_OPERATOR } from "../../../src/core/service-context.ts";
import { createServices } from "../../../src/core/services.ts";
import { rulesForRouting } from "../../../src/store/repositories/rule-repository.ts";
import { forEachDatabase } from "../../support/store-fixtures.ts";

forEachDatabase((target) => {
  it("reads every rule once over its pages, in storage order on SQLite and id order on PostgreSQL", async () => {
    const store = await target.open();
    const config = createServices(store).forAccount({ account: "default", actor: CLI_OPERATOR });
    const zone = await config.zones.create("pages.test");
    await config.addresses.create("inbox@dest.test", { verified: true });
    const created: string[] = [];
    for (let index = 0; index < 9; index++) {
      const rule = await config.rules.create({ matchers: [{ type: "literal", field: "to", value: `user${index}@pages.test` }], actions: [{ type: "forward", value: ["inbox@dest.test"] }] });
      created.push(rule.id!);
    }
    // holes in the keyset: the pages must step over them
    for (const id of [created[1]!, created[4]!]) await config.rules.remove(id);
    const kept = created.filter((id) => id !== created[1] && id !== created[4]);

    const pages: string[][] = [];
    for await (const page of rulesForRouting(store.db, 2)) pages.push(page.map((row) => row.id));
    const read = pages.flat();
    assert.deepEqual(pages.map((page) => page.length), [2, 2, 2, 1]);
    assert.equal(new Set(read).size, read.length, "no rule read twice");
    // ids are random: creation order and id order differ (9 random ids in order by chance: 1 in 362,880)
    const expected = target.label === "postgres" ? kept.toSorted() : kept;
    assert.deepEqual(read, expected);

    const rows = [];
    for await (const page of rulesForRouting(store.db)) rows.push(...page);
    assert.equal(rows.length, kept.length);
    assert.ok(rows.every((row) => row.zone_id === zone.id && row.match_key.endsWith("@pages.test") && row.actions.includes("inbox@dest.test")));
  });
});
