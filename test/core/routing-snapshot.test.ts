/**
 * loadRoutingTable at scale (issue 11, start-up with a million custom addresses): rules are read
 * in pages, and every rule of every page is routed; a change committed between two pages makes
 * it read the table again instead of using a torn one; actions are parsed once per distinct
 * text and shared, frozen; the local part keys the table as the configured address did, also
 * after a zone stopped (or started) ignoring dots. On SQLite and PostgreSQL.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from "kysely";
import { loadRoutingTable } from "../../src/core/routing-snapshot.ts";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import { createServices } from "../../src/core/services.ts";
import { resolveRecipient } from "../../src/routing/resolve-recipient.ts";
import type { Store } from "../../src/store/store.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

const literal = (value: string) => [{ type: "literal", field: "to", value }];
const forward = (to: string) => [{ type: "forward", value: [to] }];

async function configure(store: Store, count: number, options: { dotInsensitive?: boolean } = {}) {
  const config = createServices(store).forAccount({ account: "default", actor: CLI_OPERATOR });
  const zone = await config.zones.create("paged.test", { dotInsensitive: options.dotInsensitive ?? false });
  for (const inbox of ["a@dest.test", "b@dest.test"]) await config.addresses.create(inbox, { verified: true });
  const rules = [];
  for (let index = 0; index < count; index++) {
    rules.push(await config.rules.create({ name: `rule ${index}`, matchers: literal(`user${index}@paged.test`), actions: forward(index % 2 === 0 ? "a@dest.test" : "b@dest.test") }));
  }
  return { config, zone, rules };
}

forEachDatabase((target) => {
  it("routes every rule of every page, sharing one frozen action per distinct action text", async () => {
    const store = await target.open();
    await configure(store, 7);
    const table = await loadRoutingTable(store.db, { pageSize: 3 });
    assert.equal(table.rules.size, 7);
    for (let index = 0; index < 7; index++) {
      const decision = resolveRecipient(`user${index}@paged.test`, table);
      assert.equal(decision.kind, "route", `user${index}`);
      if (decision.kind === "route") assert.equal(decision.ruleName, `rule ${index}`);
    }
    const actions = new Set([...table.rules.values()].map((entry) => entry.action));
    assert.equal(actions.size, 2);
    for (const action of actions) assert.ok(Object.isFrozen(action) && (action.type !== "forward" || Object.isFrozen(action.chains)));
  });

  it("keys a rule by its configured address after its zone stops or starts ignoring dots, as before", async () => {
    const store = await target.open();
    const { config, zone } = await configure(store, 0, { dotInsensitive: true });
    await config.rules.create({ matchers: literal("J.Doe@paged.test"), actions: forward("a@dest.test") });
    const route = async (address: string) => resolveRecipient(address, await loadRoutingTable(store.db, { pageSize: 2 })).kind;
    assert.equal(await route("jdoe@paged.test"), "route");
    assert.equal(await route("j.d.o.e@paged.test"), "route");
    await config.zones.update(zone.id, { dotInsensitive: false });
    assert.equal(await route("j.doe@paged.test"), "route");
    assert.equal(await route("jdoe@paged.test"), "refuse");
    await config.zones.update(zone.id, { dotInsensitive: true });
    assert.equal(await route("jdoe@paged.test"), "route");
  });

  if (target.label === "postgres") {
    it("reads the table again when a change lands between two of its pages, never using a torn one", async () => {
      const store = await target.open();
      const { config, rules } = await configure(store, 6);
      // the first rule (in id order) is on the first page: rename it right after that page is read
      const first = [...rules].sort((a, b) => (a.id < b.id ? -1 : 1))[0]!;
      let pagesRead = 0;
      const renameAfterFirstPage: KyselyPlugin = {
        transformQuery: (args: PluginTransformQueryArgs): RootOperationNode => args.node,
        async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
          const rows = args.result.rows;
          if (rows.length > 0 && "match_key" in rows[0]! && ++pagesRead === 1) {
            await config.rules.update(first.id, { name: "renamed", matchers: literal(String(first.matchers[0]!.value)), actions: forward("a@dest.test") });
          }
          return args.result;
        },
      };
      const table = await loadRoutingTable(store.db.withPlugin(renameAfterFirstPage), { pageSize: 2 });
      const decision = resolveRecipient(String(first.matchers[0]!.value), table);
      assert.equal(decision.kind === "route" ? decision.ruleName : null, "renamed");
      assert.ok(pagesRead > 3, `the table was read again (${pagesRead} pages)`);
    });
  }
});
