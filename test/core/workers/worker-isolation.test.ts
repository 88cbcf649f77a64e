/**
 * The workers / KV seam as every front end meets it: changes made through the account services
 * are audited with actor, action and resource (a secret by name, never its value), and one
 * account can neither see nor change another's workers, secrets or KV. Run on both databases.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { it } from "node:test";
import { CLI_OPERATOR, type Actor } from "../../../src/core/service-context.ts";
import { createServices, type Services } from "../../../src/core/services.ts";
import { ValidationError } from "../../../src/core/validation-error.ts";
import type { WorkerDeployment } from "../../../src/core/workers/worker-definition.ts";
import { readConfigVersion } from "../../../src/store/config-version.ts";
import type { Store } from "../../../src/store/store.ts";
import { createSecretBox } from "../../../src/workers/secret-box.ts";
import { forEachDatabase } from "../../support/store-fixtures.ts";

const BUNDLE = "export default { async email(message) { message.setReject('no'); } };\n";
const TOKEN_ACTOR: Actor = { type: "token", id: "tok-1", name: "deploy bot", ip: "192.0.2.7" };
const text = (value: string) => new TextEncoder().encode(value);

function deployment(name: string): Omit<WorkerDeployment, "account"> {
  return { name, bundle: BUNDLE, compatibilityDate: "2024-09-23", compatibilityFlags: [], vars: {}, kv: [{ binding: "MAP", namespace: "routes" }], sendEmail: [] };
}

const notFound = (error: unknown) => error instanceof ValidationError && error.code === "not_found";

forEachDatabase((target) => {
  async function twoAccounts(): Promise<{ store: Store; services: Services }> {
    const store = await target.open();
    // a clock that ticks per call: audit entries sort by time, so two changes never share an instant
    let clock = Date.parse("2026-03-01T00:00:00Z");
    const services = createServices(store, { secretBox: createSecretBox([randomBytes(32)]), now: () => new Date((clock += 1000)) });
    await services.accounts(CLI_OPERATOR).create({ id: "acct-a", name: "A" });
    await services.accounts(CLI_OPERATOR).create({ id: "acct-b", name: "B" });
    return { store, services };
  }

  it("audits deploys, secret changes and removals with actor and resource, naming a secret but never its value", async () => {
    const { store, services } = await twoAccounts();
    const a = services.forAccount({ account: "acct-a", actor: TOKEN_ACTOR });
    const version = await readConfigVersion(store.db);
    await a.workers.deploy(deployment("router"));
    assert.equal(await readConfigVersion(store.db), version + 1, "a deploy bumps the config version");
    await a.workers.deploy(deployment("router"));
    assert.equal(await readConfigVersion(store.db), version + 1, "an identical redeploy bumps nothing");
    await a.workers.putSecret("router", "API_KEY", "sk_live_do_not_leak");
    await a.workers.deleteSecret("router", "API_KEY");
    await assert.rejects(a.workers.putSecret("router", "MAP", "x"), (error) => error instanceof ValidationError && error.code === "conflict");
    await a.workers.remove("router");

    const entries = (await a.audit.list({ limit: 50 })).entries.filter((entry) => !entry.action.type.startsWith("account."));
    const seen = entries.map((entry) => [entry.action.type, entry.resource.type, entry.resource.id, entry.action.result]).reverse();
    assert.deepEqual(seen, [
      ["worker.deploy", "worker", "router", true],
      ["worker.deploy", "worker", "router", true],
      ["worker.secret.put", "worker_secret", "router/API_KEY", true],
      ["worker.secret.delete", "worker_secret", "router/API_KEY", true],
      ["worker.secret.put", "worker_secret", "router/MAP", false],
      ["worker.delete", "worker", "router", true],
    ]);
    assert.ok(entries.every((entry) => entry.actor.id === "tok-1" && entry.actor.name === "deploy bot" && entry.actor.ip === "192.0.2.7"));
    assert.deepEqual((entries.find((entry) => entry.action.type === "worker.deploy" && (entry.after as { changed: boolean }).changed === false))?.after, {
      version: (entries.at(-1)!.after as { version: string }).version,
      changed: false,
      bindings: { vars: [], kv: [{ binding: "MAP", namespace: "routes" }], sendEmail: [], secrets: [], platform: (entries.at(-1)!.after as { bindings: { platform: unknown } }).bindings.platform },
    });
    const everything = JSON.stringify(await store.db.selectFrom("audit_log").selectAll().execute());
    assert.ok(!everything.includes("sk_live_do_not_leak"), "the secret value is nowhere in the audit log");
    assert.ok(everything.includes("API_KEY"), "the secret's name is");
    const ofB = (await services.forAccount({ account: "acct-b", actor: CLI_OPERATOR }).audit.list()).entries;
    assert.deepEqual(ofB.map((entry) => entry.action.type), ["account.create"], "account B's audit log shows none of it");
  });

  it("audits KV writes and deletes by namespace and key (not the value) and bumps no config version", async () => {
    const { store, services } = await twoAccounts();
    const a = services.forAccount({ account: "acct-a", actor: CLI_OPERATOR });
    const version = await readConfigVersion(store.db);
    await a.kv.put("routes", "sales", text("private-destination@example.net"), { metadata: { owner: "ops" } });
    await a.kv.delete("routes", "sales");
    assert.equal(await readConfigVersion(store.db), version, "KV is data, not routing configuration");
    const entries = (await a.audit.list()).entries.filter((entry) => entry.action.type.startsWith("kv."));
    assert.deepEqual(entries.map((entry) => [entry.action.type, entry.resource.type, entry.resource.id]).reverse(), [
      ["kv.put", "kv_entry", "routes/sales"],
      ["kv.delete", "kv_entry", "routes/sales"],
    ]);
    assert.ok(!JSON.stringify(entries).includes("private-destination"));
  });

  it("keeps accounts apart: B cannot see or change A's workers, secrets or KV", async () => {
    const { services } = await twoAccounts();
    const a = services.forAccount({ account: "acct-a", actor: CLI_OPERATOR });
    const b = services.forAccount({ account: "acct-b", actor: CLI_OPERATOR });
    await a.workers.deploy(deployment("router"));
    await a.workers.putSecret("router", "TOKEN", "a's secret");
    await a.kv.put("routes", "sales", text("a@x.test"));

    assert.deepEqual(await b.workers.list(), []);
    assert.deepEqual([...(await b.workers.deployedNames())], []);
    await assert.rejects(b.workers.get("router"), notFound);
    await assert.rejects(b.workers.definition("router"), notFound);
    await assert.rejects(b.workers.putSecret("router", "TOKEN", "b's attempt"), notFound);
    await assert.rejects(b.workers.deleteSecret("router", "TOKEN"), notFound);
    await assert.rejects(b.workers.remove("router"), notFound);
    assert.deepEqual(await b.workers.secretNames("router"), []);
    assert.deepEqual(await b.workers.logs("router"), []);
    assert.equal(await b.kv.get("routes", "sales"), null);
    assert.deepEqual((await b.kv.list("routes")).keys, []);
    assert.deepEqual(await b.kv.namespaces(), []);
    await b.kv.delete("routes", "sales");
    assert.equal(await services.runtimeWorkers.load("acct-b", "router"), null);

    // A's are untouched by B's attempts
    assert.deepEqual((await a.workers.list()).map((worker) => worker.name), ["router"]);
    assert.deepEqual((await a.workers.definition("router")).secrets, { TOKEN: "a's secret" });
    assert.equal(new TextDecoder().decode((await a.kv.get("routes", "sales"))!.value), "a@x.test");
    assert.deepEqual(await a.kv.namespaces(), [{ namespace: "routes", keys: 1 }]);
    // a worker of the same name in B is B's own
    await b.workers.deploy(deployment("router"));
    assert.deepEqual(await b.workers.secretNames("router"), []);
    assert.deepEqual((await a.workers.definition("router")).secrets, { TOKEN: "a's secret" });
  });

  it("refuses a rule or catch-all running a worker the account has not deployed, naming actions[0].value", async () => {
    const { services } = await twoAccounts();
    const a = services.forAccount({ account: "acct-a", actor: CLI_OPERATOR });
    const b = services.forAccount({ account: "acct-b", actor: CLI_OPERATOR });
    await a.zones.create("a.example");
    await b.zones.create("b.example");
    await b.workers.deploy(deployment("router"));
    const rule = { matchers: [{ type: "literal", field: "to", value: "bot@a.example" }], actions: [{ type: "worker", value: ["router"] }] };
    const undeployed = (error: unknown) => error instanceof ValidationError && error.code === "not_deployed" && error.field === "actions[0].value" && /"router" is not deployed/i.test(error.message);
    await assert.rejects(a.rules.create(rule), undeployed, "B's worker of that name does not count for A");
    await assert.rejects(a.catchAll.set("a.example", { actions: [{ type: "worker", value: ["router"] }] }), undeployed);
    const drop = await a.rules.create({ ...rule, actions: [{ type: "drop" }] });
    await assert.rejects(a.rules.update(drop.id, { actions: [{ type: "worker", value: ["Router"] }] }), undeployed);
    const refused = (await a.audit.list()).entries.filter((entry) => !entry.action.result);
    assert.ok(refused.some((entry) => entry.action.type === "rule.create" && /not deployed/.test(entry.action.info ?? "")), "the refusal is audited");

    // the operator's explicit override, then the normal path once deployed
    const early = await a.rules.create({ ...rule, matchers: [{ type: "literal", field: "to", value: "early@a.example" }] }, undefined, { allowUndeployedWorker: true });
    assert.deepEqual(early.inactiveReasons, ['worker "router" is not deployed']);
    await a.workers.deploy(deployment("router"));
    const live = await a.rules.update(drop.id, { actions: [{ type: "worker", value: ["Router"] }] });
    assert.deepEqual(live.inactiveReasons, []);
    await a.catchAll.set("a.example", { actions: [{ type: "worker", value: ["router"] }] });
  });
});
