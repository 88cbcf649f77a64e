import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadRoutingTable, RoutingConfigWatcher } from "../../src/core/routing-snapshot.ts";
import { CLI_OPERATOR, type Actor } from "../../src/core/service-context.ts";
import { createServices, type AccountServices } from "../../src/core/services.ts";
import { createTokenAuthenticator } from "../../src/core/tokens/token-authenticator.ts";
import { ValidationError } from "../../src/core/validation-error.ts";
import { VerificationLinks, type VerificationMessage } from "../../src/core/addresses/verification-links.ts";
import { resolveRecipient } from "../../src/routing/resolve-recipient.ts";
import { readConfigVersion } from "../../src/store/config-version.ts";
import type { Store } from "../../src/store/store.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

function fieldOf(error: unknown): string {
  assert.ok(error instanceof ValidationError, `expected a ValidationError, got ${String(error)}`);
  return `${error.field} (${error.code})`;
}

const OPERATOR: Actor = { type: "operator", id: "admin", name: "operator", ip: null };

function services(store: Store, account = "default", actor: Actor = CLI_OPERATOR): AccountServices {
  return createServices(store).forAccount({ account, actor });
}

const literal = (value: string) => [{ type: "literal", field: "to", value }];

describe("core services", () => {
  forEachDatabase((target) => {
    it("stores a zone in IDNA lower case and refuses a duplicate or a non-domain, naming the field", async () => {
      const service = services(await target.open());
      const zone = await service.zones.create("Bücher.Example.", { supportSubaddress: true });
      assert.equal(zone.name, "xn--bcher-kva.example");
      assert.equal(zone.supportSubaddress, true);
      await assert.rejects(service.zones.create("BÜCHER.example"), (error) => fieldOf(error) === "name (conflict)");
      await assert.rejects(service.zones.create("not a domain"), (error) => fieldOf(error) === "name (invalid)");
      await assert.rejects(service.zones.create("localhost"), (error) => fieldOf(error) === "name (invalid)");
    });

    it("validates rule actions when the rule is saved, naming the offending destination", async () => {
      const { zones, rules } = services(await target.open());
      await zones.create("example.com");
      const create = (value: string, actions: unknown) => rules.create({ matchers: literal(value), actions });
      await assert.rejects(create("a@example.com", [{ type: "forward", value: ["ok@x.net, bob@"] }]), (error: Error) => fieldOf(error) === "actions[0].value (invalid)" && /"bob@"/.test(error.message));
      await assert.rejects(create("a@example.com", [{ type: "reject", value: ["line one\r\n250 fake"] }]), (error) => fieldOf(error) === "actions[0].value (invalid)");
      await assert.rejects(create("a@example.com", [{ type: "teleport" }]), (error) => fieldOf(error) === "actions[0].type (invalid)");
      await assert.rejects(create("a@example.com", []), (error) => fieldOf(error) === "actions (required)");
      await assert.rejects(create("a@example.com", [{ type: "forward", value: [42] }]), (error) => fieldOf(error) === "actions[0].value (invalid)");
      await assert.rejects(create("a@other.com", [{ type: "drop" }]), (error) => fieldOf(error) === "matchers[0].value (not_found)");
      await assert.rejects(create("a%b@example.com", [{ type: "drop" }]), (error) => fieldOf(error) === "matchers[0].value (invalid)");
      await assert.rejects(rules.create({ matchers: [{ type: "all" }], actions: [{ type: "drop" }] }), (error) => fieldOf(error) === "matchers[0].type (invalid)");
      await assert.rejects(rules.create({ matchers: literal("b@example.com"), actions: [{ type: "drop" }], priority: -1 }), (error) => fieldOf(error) === "priority (invalid)");
      const rule = await create("Hello@Example.com", [{ type: "forward", value: ["a@x.net : b@y.net,  c@z.net, A@X.NET"] }]);
      assert.deepEqual(rule.actions, [{ type: "forward", value: ["a@x.net:b@y.net", "c@z.net"] }]);
      assert.deepEqual(rule.matchers, [{ type: "literal", field: "to", value: "Hello@example.com" }]);
      await assert.rejects(create("hello@example.com", [{ type: "drop" }]), (error) => fieldOf(error) === "matchers[0].value (conflict)");
    });

    it("bumps the configuration version with every routing change, in the same transaction", async () => {
      const store = await target.open();
      const service = services(store);
      const before = await readConfigVersion(store.db);
      await service.zones.create("example.com");
      await service.addresses.create("me@x.net", { verified: true });
      await service.rules.create({ matchers: literal("hi@example.com"), actions: [{ type: "forward", value: ["me@x.net"] }] });
      await service.rules.setEnabled("hi@example.com", false);
      await service.catchAll.set("example.com", { actions: [{ type: "drop" }] });
      assert.equal(await readConfigVersion(store.db), before + 5);
      await assert.rejects(service.zones.create("example.com"));
      assert.equal(await readConfigVersion(store.db), before + 5, "a refused change bumps nothing");
    });

    it("audits every change with actor, action, resource, before/after and result, failures included", async () => {
      const store = await target.open();
      const service = services(store, "default", { type: "token", id: "tok1", name: "ci token", ip: "192.0.2.7" });
      const zone = await service.zones.create("example.com");
      await service.addresses.create("me@x.net", { verified: true });
      const rule = await service.rules.create({ matchers: literal("hi@example.com"), actions: [{ type: "drop" }] });
      await service.rules.update(rule.id, { enabled: false });
      await assert.rejects(service.zones.create("example.com"));
      const { entries } = await service.audit.list();
      assert.deepEqual(entries.map((e) => `${e.action.type}:${e.action.result}`), ["zone.create:false", "rule.update:true", "rule.create:true", "address.create:true", "zone.create:true"]);
      const update = entries[1]!;
      assert.deepEqual(update.actor, { type: "token", id: "tok1", name: "ci token", ip: "192.0.2.7" });
      assert.equal(update.resource.id, rule.id);
      assert.equal(update.resource.zone_id, zone.id);
      assert.equal((update.before as { enabled: boolean }).enabled, true);
      assert.equal((update.after as { enabled: boolean }).enabled, false);
      assert.match(entries[0]!.action.info ?? "", /already routed/);
      // Cursor paging walks the same entries, newest first, without repeats.
      const first = await service.audit.list({ limit: 2 });
      const second = await service.audit.list({ limit: 2, cursor: first.cursor! });
      const third = await service.audit.list({ limit: 2, cursor: second.cursor! });
      assert.deepEqual([...first.entries, ...second.entries, ...third.entries].map((e) => e.id), entries.map((e) => e.id));
      assert.equal(third.cursor, null);
      await assert.rejects(service.audit.list({ cursor: "garbage" }), (error) => fieldOf(error) === "cursor (invalid)");
    });

    it("makes a rule live only once its destinations are verified, and says why it is not", async () => {
      const store = await target.open();
      const service = services(store);
      await service.zones.create("example.com");
      await service.addresses.create("me@x.net");
      await service.rules.create({ matchers: literal("hi@example.com"), actions: [{ type: "forward", value: ["me@x.net"] }] });
      let decision = resolveRecipient("hi@example.com", await loadRoutingTable(store.db));
      assert.equal(decision.kind === "refuse" && decision.reason, "rule-inactive");
      assert.deepEqual((await service.rules.get("hi@example.com")).inactiveReasons, ["destination me@x.net is not verified"]);
      await service.addresses.markVerified("ME@x.net");
      decision = resolveRecipient("hi@example.com", await loadRoutingTable(store.db));
      assert.equal(decision.kind, "route");
      assert.deepEqual((await service.rules.get("hi@example.com")).inactiveReasons, []);
      const removal = await service.addresses.remove("me@x.net");
      assert.deepEqual(removal.inactiveRules.map((r) => r.name), ["Rule for hi@example.com"]);
      decision = resolveRecipient("hi@example.com", await loadRoutingTable(store.db));
      assert.equal(decision.kind === "refuse" && decision.reason, "rule-inactive", "removing a destination deactivates its rules");
      assert.match((await service.rules.get("hi@example.com")).inactiveReasons[0] ?? "", /not a destination address/);
    });

    it("keeps accounts apart: zones, addresses, rules and verification of one are invisible to the other", async () => {
      const store = await target.open();
      await createServices(store).accounts(OPERATOR).create({ id: "acct-b", name: "B" });
      const a = services(store, "default");
      const b = services(store, "acct-b");
      const zone = await a.zones.create("a.example");
      await a.addresses.create("shared@x.net", { verified: true });
      const rule = await a.rules.create({ matchers: literal("hi@a.example"), actions: [{ type: "forward", value: ["shared@x.net"] }] });
      await assert.rejects(b.zones.get(zone.id), (error) => fieldOf(error) === "zone (not_found)");
      await assert.rejects(b.zones.get("a.example"), (error) => fieldOf(error) === "zone (not_found)");
      await assert.rejects(b.rules.get(rule.id), (error) => fieldOf(error) === "rule (not_found)");
      await assert.rejects(b.rules.remove(rule.id), (error) => fieldOf(error) === "rule (not_found)");
      await assert.rejects(b.zones.create("a.example"), (error) => fieldOf(error) === "name (conflict)" && !/default/.test((error as Error).message));
      assert.equal((await b.zones.list()).totalCount, 0);
      assert.equal((await b.addresses.list()).totalCount, 0);
      // B's audit log holds its own creation and its refused attempts, nothing of A's.
      assert.deepEqual((await b.audit.list()).entries.map((e) => e.action.type), ["zone.create", "rule.delete", "account.create"]);
      // B's rule forwarding to an address only A verified stays inactive.
      await b.zones.create("b.example");
      await b.addresses.create("shared@x.net");
      await b.rules.create({ matchers: literal("hi@b.example"), actions: [{ type: "forward", value: ["shared@x.net"] }] });
      const table = await loadRoutingTable(store.db);
      assert.equal(resolveRecipient("hi@a.example", table).kind, "route");
      const decision = resolveRecipient("hi@b.example", table);
      assert.equal(decision.kind === "refuse" && decision.reason, "rule-inactive");
    });

    it("pages lists Cloudflare's way and refuses a bad page", async () => {
      const service = services(await target.open());
      await service.zones.create("example.com");
      for (let i = 0; i < 7; i += 1) await service.rules.create({ matchers: literal(`r${i}@example.com`), actions: [{ type: "drop" }] });
      const page1 = await service.rules.list({ zone: "example.com" }, { page: 1, perPage: 3 });
      const page3 = await service.rules.list({ zone: "example.com" }, { page: 3, perPage: 3 });
      assert.equal(page1.totalCount, 7);
      assert.equal(page1.items.length, 3);
      assert.equal(page3.items.length, 1);
      await assert.rejects(service.rules.list({}, { page: 0 }), (error) => fieldOf(error) === "page (invalid)");
      await assert.rejects(service.rules.list({}, { perPage: 51 }), (error) => fieldOf(error) === "per_page (invalid)");
    });

    it("removes a zone with its rules and catch-all", async () => {
      const store = await target.open();
      const service = services(store);
      await service.zones.create("example.com");
      await service.rules.create({ matchers: literal("a@example.com"), actions: [{ type: "drop" }] });
      await service.catchAll.set("example.com", { actions: [{ type: "drop" }] });
      await service.zones.remove("example.com");
      assert.deepEqual(await service.rules.all(), []);
      await service.zones.create("example.com");
      const catchAll = await service.catchAll.get("example.com");
      assert.equal(catchAll.enabled, false);
      assert.equal(catchAll.modified, null);
    });

    it("creates tokens shown once, stored hashed, and authenticates them with their policies and limits", async () => {
      const store = await target.open();
      let clock = new Date("2030-01-01T00:00:00Z");
      const all = createServices(store, { now: () => clock });
      const service = all.forAccount({ account: "default", actor: CLI_OPERATOR });
      const policies = [{ effect: "allow", permission_groups: [{ id: "Email Routing Rules Read" }], resources: { "com.cloudflare.api.account.default": "*" } }];
      const created = await service.tokens.create({ name: "reader", policies, expires_on: "2030-01-02T00:00:00Z", condition: { request_ip: { in: ["192.0.2.0/24"] } } });
      assert.match(created.value, /^mrt_[0-9a-f]{32}[A-Za-z0-9_-]{43}$/);
      const stored = JSON.stringify(await store.db.selectFrom("api_tokens").selectAll().execute());
      assert.ok(!stored.includes(created.value.slice(36)), "the secret is not stored");
      assert.ok(!("value" in (await service.tokens.get(created.id))), "the value is never shown again");
      const authenticate = createTokenAuthenticator(store.db, () => clock);
      const ok = await authenticate(created.value, "192.0.2.9");
      assert.equal(ok.principal?.kind, "token");
      assert.equal((await authenticate(created.value, "198.51.100.1")).reason, "ip_not_allowed");
      assert.equal((await authenticate(`${created.value.slice(0, -1)}${created.value.endsWith("A") ? "B" : "A"}`, "192.0.2.9")).reason, "mismatch");
      assert.equal((await authenticate("mrt_short", "192.0.2.9")).reason, "malformed");
      clock = new Date("2030-01-03T00:00:00Z");
      assert.equal((await authenticate(created.value, "192.0.2.9")).reason, "expired");
      await assert.rejects(service.tokens.create({ name: "x", policies: [{ permission_groups: [{ id: "nope" }], resources: { "com.cloudflare.api.account.default": "*" } }] }), (error) => fieldOf(error) === "policies[0].permission_groups[0].id (invalid)");
      await assert.rejects(service.tokens.create({ name: "x", policies: [{ permission_groups: [{ id: "Zone Read" }], resources: { "com.cloudflare.api.account.other": "*" } }] }), (error) => fieldOf(error) === "policies[0].resources (invalid)");
      const rolled = await service.tokens.roll(created.id);
      clock = new Date("2030-01-01T12:00:00Z");
      assert.equal((await authenticate(created.value, "192.0.2.9")).reason, "mismatch", "the old value stops working once rolled");
      assert.equal((await authenticate(rolled, "192.0.2.9")).principal?.kind, "token");
      await service.tokens.update(created.id, { status: "disabled" });
      assert.equal((await authenticate(rolled, "192.0.2.9")).reason, "disabled");
    });

    it("verifies an address only through the confirming step of an unexpired, unused link", async () => {
      const store = await target.open();
      let clock = new Date("2030-01-01T00:00:00Z");
      const service = createServices(store, { now: () => clock }).forAccount({ account: "default", actor: CLI_OPERATOR });
      await service.zones.create("example.com");
      await service.addresses.create("me@x.net");
      await service.rules.create({ matchers: literal("hi@example.com"), actions: [{ type: "forward", value: ["me@x.net"] }] });
      const links = new VerificationLinks(store, { publicUrl: "http://mx.example:8787/", now: () => clock });
      const sent: VerificationMessage[] = [];
      assert.equal(await links.flush(async (message) => void sent.push(message)), 1);
      assert.equal(await links.flush(async (message) => void sent.push(message)), 0, "each request is sent once");
      assert.equal(sent[0]!.email, "me@x.net");
      const secret = sent[0]!.link.replace("http://mx.example:8787/verify/", "");
      assert.equal((await links.describe(secret)).state, "valid");
      assert.equal((await service.addresses.get("me@x.net")).verified, null, "looking at the link verifies nothing");
      assert.equal((await links.describe("not-a-secret")).state, "unknown");
      assert.equal((await links.confirm(secret)).state, "valid");
      assert.notEqual((await service.addresses.get("me@x.net")).verified, null);
      assert.equal((await links.confirm(secret)).state, "used", "a link works once");
      assert.equal(resolveRecipient("hi@example.com", await loadRoutingTable(store.db)).kind, "route");
      // Resent links expire after 24 hours.
      await service.addresses.create("late@x.net");
      await links.flush(async (message) => void sent.push(message));
      clock = new Date("2030-01-02T00:00:01Z");
      assert.equal((await links.confirm(sent[1]!.link.split("/verify/")[1]!)).state, "expired");
      assert.equal((await service.addresses.get("late@x.net")).verified, null);
    });

    it("makes a verification link work before the message carrying it has left, and a failed send's link never", async () => {
      const store = await target.open();
      const service = services(store);
      await service.addresses.create("quick@x.net");
      const links = new VerificationLinks(store, { publicUrl: "http://mx.example:8787/" });
      // the recipient follows the link while the sender still waits for the upstream's 250
      const seenDuringSend: string[] = [];
      let failedLink = "";
      assert.equal(
        await links.flush(async (message) => {
          seenDuringSend.push((await links.describe(message.link.split("/verify/")[1]!)).state);
        }),
        1,
      );
      assert.deepEqual(seenDuringSend, ["valid"]);
      await service.addresses.create("slow@x.net");
      assert.equal(
        await links.flush(async (message) => {
          failedLink = message.link.split("/verify/")[1]!;
          throw new Error("451 try later");
        }),
        0,
      );
      assert.equal((await links.describe(failedLink)).state, "unknown", "a link whose message never left verifies nothing");
    });

    it("lets a second connection's change reach a watcher through the version poll", async () => {
      const server = await target.open();
      const cli = services(await target.open());
      const watcher = new RoutingConfigWatcher(server.db, { intervalMs: 10_000 });
      await watcher.start();
      try {
        await cli.zones.create("example.com");
        await cli.catchAll.set("example.com", { actions: [{ type: "drop" }] });
        assert.equal(resolveRecipient("x@example.com", watcher.table).kind, "refuse", "not seen before the poll");
        await watcher.refresh();
        assert.equal(resolveRecipient("x@example.com", watcher.table).kind, "route");
      } finally {
        watcher.stop();
      }
    });
  });
});
