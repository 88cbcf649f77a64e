import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadRoutingTable, RoutingConfigWatcher } from "../../src/core/routing-snapshot.ts";
import { RoutingService } from "../../src/core/routing-service.ts";
import { ValidationError } from "../../src/core/validation-error.ts";
import { resolveRecipient } from "../../src/routing/resolve-recipient.ts";
import { readConfigVersion } from "../../src/store/config-version.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

function fieldOf(error: unknown): string {
  assert.ok(error instanceof ValidationError, `expected a ValidationError, got ${String(error)}`);
  return `${error.field} (${error.code})`;
}

describe("RoutingService", () => {
  forEachDatabase((target) => {
    it("stores a zone in IDNA lower case and refuses a duplicate or a non-domain, naming the field", async () => {
      const service = new RoutingService((await target.open()).db);
      const zone = await service.addZone("Bücher.Example.", { supportSubaddress: true });
      assert.equal(zone.name, "xn--bcher-kva.example");
      assert.equal(zone.supportSubaddress, true);
      await assert.rejects(service.addZone("BÜCHER.example"), (error) => fieldOf(error) === "domain (conflict)");
      await assert.rejects(service.addZone("not a domain"), (error) => fieldOf(error) === "domain (invalid)");
      await assert.rejects(service.addZone("localhost"), (error) => fieldOf(error) === "domain (invalid)");
    });

    it("validates rule actions when the rule is saved, naming the offending destination", async () => {
      const service = new RoutingService((await target.open()).db);
      await service.addZone("example.com");
      await assert.rejects(service.addRule("a@example.com", [{ type: "forward", value: ["ok@x.net, bob@"] }]), (error: Error) => fieldOf(error) === "actions[0].value (invalid)" && /"bob@"/.test(error.message));
      await assert.rejects(service.addRule("a@example.com", [{ type: "reject", value: ["line one\r\n250 fake"] }]), (error) => fieldOf(error) === "actions[0].value (invalid)");
      await assert.rejects(service.addRule("a@example.com", [{ type: "teleport" }]), (error) => fieldOf(error) === "actions[0].type (invalid)");
      await assert.rejects(service.addRule("a@example.com", []), (error) => fieldOf(error) === "actions (required)");
      await assert.rejects(service.addRule("a@other.com", [{ type: "drop" }]), (error) => fieldOf(error) === "matchers[0].value (not_found)");
      await assert.rejects(service.addRule("a%b@example.com", [{ type: "drop" }]), (error) => fieldOf(error) === "matchers[0].value (invalid)");
      const rule = await service.addRule("Hello@Example.com", [{ type: "forward", value: ["a@x.net : b@y.net,  c@z.net, A@X.NET"] }]);
      assert.deepEqual(rule.actions, [{ type: "forward", value: ["a@x.net:b@y.net", "c@z.net"] }]);
      assert.deepEqual(rule.matchers, [{ type: "literal", field: "to", value: "Hello@example.com" }]);
      await assert.rejects(service.addRule("hello@example.com", [{ type: "drop" }]), (error) => fieldOf(error) === "matchers[0].value (conflict)");
    });

    it("bumps the configuration version with every change, in the same transaction", async () => {
      const store = await target.open();
      const service = new RoutingService(store.db);
      const before = await readConfigVersion(store.db);
      await service.addZone("example.com");
      await service.addDestination("me@x.net", { verified: true });
      await service.addRule("hi@example.com", [{ type: "forward", value: ["me@x.net"] }]);
      await service.setRuleEnabled("hi@example.com", false);
      await service.setCatchAll("example.com", { actions: [{ type: "drop" }] });
      assert.equal(await readConfigVersion(store.db), before + 5);
      await assert.rejects(service.addZone("example.com"));
      assert.equal(await readConfigVersion(store.db), before + 5, "a refused change bumps nothing");
    });

    it("makes a rule live only once its destinations are verified", async () => {
      const store = await target.open();
      const service = new RoutingService(store.db);
      await service.addZone("example.com");
      await service.addDestination("me@x.net");
      await service.addRule("hi@example.com", [{ type: "forward", value: ["me@x.net"] }]);
      let decision = resolveRecipient("hi@example.com", await loadRoutingTable(store.db));
      assert.equal(decision.kind === "refuse" && decision.reason, "rule-inactive");
      await service.verifyDestination("ME@x.net");
      decision = resolveRecipient("hi@example.com", await loadRoutingTable(store.db));
      assert.equal(decision.kind, "route");
      await service.removeDestination("me@x.net");
      decision = resolveRecipient("hi@example.com", await loadRoutingTable(store.db));
      assert.equal(decision.kind === "refuse" && decision.reason, "rule-inactive", "removing a destination deactivates its rules");
    });

    it("removes a zone with its rules and catch-all", async () => {
      const store = await target.open();
      const service = new RoutingService(store.db);
      await service.addZone("example.com");
      await service.addRule("a@example.com", [{ type: "drop" }]);
      await service.setCatchAll("example.com", { actions: [{ type: "drop" }] });
      await service.removeZone("example.com");
      assert.deepEqual(await service.listRules(), []);
      assert.equal((await store.db.selectFrom("catch_alls").selectAll().execute()).length, 0);
      await service.addZone("example.com");
      assert.equal(await service.getCatchAll("example.com"), null);
    });

    it("lets a second connection's change reach a watcher through the version poll", async () => {
      const server = await target.open();
      const cli = new RoutingService((await target.open()).db);
      const watcher = new RoutingConfigWatcher(server.db, { intervalMs: 10_000 });
      await watcher.start();
      try {
        await cli.addZone("example.com");
        await cli.setCatchAll("example.com", { actions: [{ type: "drop" }] });
        assert.equal(resolveRecipient("x@example.com", watcher.table).kind, "refuse", "not seen before the poll");
        await watcher.refresh();
        assert.equal(resolveRecipient("x@example.com", watcher.table).kind, "route");
      } finally {
        watcher.stop();
      }
    });
  });
});
