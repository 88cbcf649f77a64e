import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ValidationError } from "../../../src/core/validation-error.ts";
import { readConfigVersion } from "../../../src/store/config-version.ts";
import { createSecretBox, openSecretBox, SECRET_KEY_FILE } from "../../../src/workers/secret-box.ts";
import { DEFAULT_TRIGGERS, NO_PLATFORM_BINDINGS } from "../../../src/workers/platform-bindings.ts";
import { CLI_OPERATOR } from "../../../src/core/service-context.ts";
import { createServices } from "../../../src/core/services.ts";
import { RuntimeWorkers } from "../../../src/core/workers/runtime-workers.ts";
import type { WorkerDeployment } from "../../../src/core/workers/worker-definition.ts";
import { forEachDatabase } from "../../support/store-fixtures.ts";

const BUNDLE = 'var worker = { async email(message) { message.setReject("no"); } };\nexport { worker as default };\n';

function deployment(changes: Partial<WorkerDeployment> = {}): WorkerDeployment {
  return {
    account: "default",
    name: "router",
    bundle: BUNDLE,
    compatibilityDate: "2024-09-23",
    compatibilityFlags: ["nodejs_compat"],
    vars: { GREETING: "hello", PORT: "8080", RETRIES: 3, ROUTES: { sales: ["a@x.test"] } },
    kv: [{ binding: "CONFIG", namespace: "config-ns" }],
    sendEmail: [{ name: "NOTIFY", destinationAddress: "ops@example.net" }, { name: "OPEN" }],
    ...changes,
  };
}

function isConflict(error: unknown): boolean {
  return error instanceof ValidationError && error.code === "conflict";
}

forEachDatabase((target) => {
  const box = createSecretBox([randomBytes(32)]);

  async function setup(options: { logRetention?: number } = {}) {
    const store = await target.open();
    let clock = Date.parse("2026-01-01T00:00:00Z");
    const now = () => new Date((clock += 1000));
    const services = createServices(store, { secretBox: box, now });
    const service = services.forAccount({ account: "default", actor: CLI_OPERATOR }).workers;
    const runtime = new RuntimeWorkers(store.db, box, { now, ...options });
    return { db: store.db, store, service, runtime };
  }

  it("deploys a worker and loads back the definition the runtime runs", async () => {
    const { db, service, runtime } = await setup();
    const before = await readConfigVersion(db);
    const result = await service.deploy(deployment());
    assert.equal(result.changed, true);
    assert.equal(result.previousVersion, null);
    assert.match(result.worker.version, /^[0-9a-f]{64}$/);
    assert.equal(await readConfigVersion(db), before + 1, "a deploy bumps the config version");
    assert.deepEqual(await runtime.load("default", "router"), {
      account: "default",
      name: "router",
      bundle: BUNDLE,
      compatibilityDate: "2024-09-23",
      compatibilityFlags: ["nodejs_compat"],
      vars: { GREETING: "hello", PORT: "8080", RETRIES: 3, ROUTES: { sales: ["a@x.test"] } },
      secrets: {},
      kv: [{ binding: "CONFIG", namespace: "config-ns" }],
      sendEmail: [{ name: "NOTIFY", destinationAddress: "ops@example.net" }, { name: "OPEN" }],
      version: result.worker.version,
      modules: [],
      platform: NO_PLATFORM_BINDINGS,
      triggers: DEFAULT_TRIGGERS,
    });
    assert.equal(await runtime.load("default", "nobody"), null);
    assert.equal(await runtime.load("other-account", "router"), null);
  });

  it("keeps the version (and bumps nothing) for an identical redeploy, and moves it for any change", async () => {
    const { db, service, runtime } = await setup();
    const first = await service.deploy(deployment());
    const version = await readConfigVersion(db);
    const again = await service.deploy(deployment({ vars: { ROUTES: { sales: ["a@x.test"] }, RETRIES: 3, PORT: "8080", GREETING: "hello" } }));
    assert.equal(again.changed, false, "the same vars in another order are the same deployment");
    assert.equal(again.worker.version, first.worker.version);
    assert.equal(await readConfigVersion(db), version);

    const seen = new Set([first.worker.version]);
    for (const changes of [{ bundle: `${BUNDLE}// v2\n` }, { vars: { GREETING: "hi" } }, { vars: { GREETING: 1 } }, { kv: [] }, { sendEmail: [] }, { compatibilityDate: "2025-01-01" }, { compatibilityFlags: [] }]) {
      const result = await service.deploy(deployment(changes));
      assert.equal(result.changed, true, JSON.stringify(changes));
      assert.ok(!seen.has(result.worker.version), `a new version for ${JSON.stringify(changes)}`);
      seen.add(result.worker.version);
    }
    const latest = await service.list();
    assert.equal(latest.length, 1);
    assert.equal(latest[0]!.createdAt, first.worker.createdAt, "a redeploy keeps the creation time");
    assert.notEqual(latest[0]!.modifiedAt, first.worker.modifiedAt);
  });

  it("stores secrets encrypted, decrypts them for the runtime, and keeps them across redeploys", async () => {
    const { db, service, runtime } = await setup();
    const deployed = await service.deploy(deployment());
    const plaintext = "xoxb-slack-token-do-not-leak";
    const put = await service.putSecret("router", "SLACK_TOKEN", plaintext);
    assert.equal(put.replaced, false);
    assert.notEqual(put.version, deployed.worker.version, "a secret change is a new version");

    const rows = await db.selectFrom("worker_secrets").selectAll().execute();
    assert.equal(rows.length, 1);
    assert.ok(!rows[0]!.ciphertext.includes(plaintext) && !rows[0]!.ciphertext.includes(Buffer.from(plaintext).toString("base64").slice(0, 12)));
    assert.match(rows[0]!.ciphertext, /^v1\./);
    assert.deepEqual((await runtime.load("default", "router"))!.secrets, { SLACK_TOKEN: plaintext });

    const redeployed = await service.deploy(deployment({ bundle: `${BUNDLE}// v2\n` }));
    assert.deepEqual((await runtime.load("default", "router"))!.secrets, { SLACK_TOKEN: plaintext });
    assert.deepEqual(redeployed.worker.bindings.secrets, ["SLACK_TOKEN"]);

    const replaced = await service.putSecret("router", "SLACK_TOKEN", "rotated");
    assert.equal(replaced.replaced, true);
    assert.equal((await runtime.load("default", "router"))!.secrets["SLACK_TOKEN"], "rotated");
    assert.deepEqual(await service.secretNames("router"), ["SLACK_TOKEN"]);
    await service.deleteSecret("router", "SLACK_TOKEN");
    assert.deepEqual((await runtime.load("default", "router"))!.secrets, {});
    await assert.rejects(service.deleteSecret("router", "SLACK_TOKEN"), { message: 'secret: worker "router" has no secret "SLACK_TOKEN"' });
    await assert.rejects(service.putSecret("ghost", "K", "v"), { message: 'worker: no worker named "ghost" is deployed' });
  });

  it("binds a ciphertext to its worker and name: copied to another row it does not open", async () => {
    const { db, service, runtime } = await setup();
    await service.deploy(deployment());
    await service.deploy(deployment({ name: "other" }));
    await service.putSecret("router", "TOKEN", "router's secret");
    await service.putSecret("other", "TOKEN", "other's secret");
    const stolen = await db.selectFrom("worker_secrets").select("ciphertext").where("worker", "=", "router").executeTakeFirstOrThrow();
    await db.updateTable("worker_secrets").set({ ciphertext: stolen.ciphertext }).where("worker", "=", "other").execute();
    await assert.rejects(runtime.load("default", "other"), (error: Error) => /cannot decrypt/.test(error.message) && !error.message.includes("router's secret"));
    const wrongKey = new RuntimeWorkers(db, createSecretBox([randomBytes(32)]));
    await assert.rejects(wrongKey.load("default", "router"), { message: /cannot decrypt/ });
  });

  it("refuses a binding name used twice across vars, KV, send_email and secrets", async () => {
    const { service, runtime } = await setup();
    await assert.rejects(service.deploy(deployment({ kv: [{ binding: "GREETING", namespace: "n" }] })), isConflict);
    await service.deploy(deployment());
    await assert.rejects(service.putSecret("router", "CONFIG", "x"), { message: 'secret: binding name "CONFIG" is already used by a KV namespace of worker "router"' });
    await service.putSecret("router", "API_KEY", "x");
    await assert.rejects(service.deploy(deployment({ vars: { API_KEY: "plain" } })), {
      message: 'bindings: binding name "API_KEY" is already a secret of worker "router"; rename a var or delete the secret',
    });
  });

  it("refuses binding names of the runtime's own (the entry worker's way to the host)", async () => {
    const { service, runtime } = await setup();
    const d1 = { ...NO_PLATFORM_BINDINGS, d1: [{ binding: "__MAILROUTE_BINDINGS", databaseId: "db-1" }] };
    await assert.rejects(service.deploy(deployment({ platform: d1 })), /binding name "__MAILROUTE_BINDINGS" is reserved for mailroute's runtime; rename a D1 database/);
    await assert.rejects(service.deploy(deployment({ kv: [{ binding: "__mailroute_host", namespace: "n" }] })), /is reserved/);
    assert.equal(await runtime.load("default", "router"), null);
  });

  it("names workers case-insensitively, as rules do, and refuses names a rule could not use", async () => {
    const { service, runtime } = await setup();
    const result = await service.deploy(deployment({ name: "Inbox-Router" }));
    assert.equal(result.worker.name, "inbox-router");
    assert.equal((await runtime.load("default", "INBOX-ROUTER"))!.name, "inbox-router");
    for (const name of ["", "-x", "has space", "a".repeat(65), "dots.not"]) {
      await assert.rejects(service.deploy(deployment({ name })), (error: unknown) => error instanceof ValidationError && error.field === "name");
    }
    await assert.rejects(service.deploy(deployment({ compatibilityDate: "soon" })), { message: 'compatibility_date: "soon" is not a date "YYYY-MM-DD"' });
    await assert.rejects(service.deploy(deployment({ bundle: "" })), { message: "bundle: is empty" });
  });

  it("lists workers with their bindings (never secret values) and reports versions cheaply", async () => {
    const { service, runtime } = await setup();
    await service.deploy(deployment({ name: "b-worker" }));
    const a = await service.deploy(deployment({ name: "a-worker", vars: {}, kv: [], sendEmail: [] }));
    await service.putSecret("b-worker", "TOKEN", "s3cret");
    const list = await service.list();
    assert.deepEqual(list.map((w) => [w.name, w.bindings]), [
      ["a-worker", { vars: [], kv: [], sendEmail: [], secrets: [], platform: NO_PLATFORM_BINDINGS }],
      ["b-worker", { vars: ["GREETING", "PORT", "RETRIES", "ROUTES"], kv: [{ binding: "CONFIG", namespace: "config-ns" }], sendEmail: ["NOTIFY", "OPEN"], secrets: ["TOKEN"], platform: NO_PLATFORM_BINDINGS }],
    ]);
    assert.equal(list[0]!.bundleSize, BUNDLE.length);
    assert.ok(!JSON.stringify(list).includes("s3cret"));
    const versions = await runtime.versions();
    assert.deepEqual(versions.map((v) => v.name), ["a-worker", "b-worker"]);
    assert.equal(versions[0]!.version, a.worker.version);
  });

  it("removes a worker with its secrets and logs, bumping the config version", async () => {
    const { db, service, runtime } = await setup();
    await service.deploy(deployment());
    await service.putSecret("router", "TOKEN", "x");
    await runtime.appendLogs("default", "router", [{ level: "log", message: "hello" }]);
    const version = await readConfigVersion(db);
    const removed = await service.remove("Router");
    assert.equal(removed.name, "router");
    assert.equal(await readConfigVersion(db), version + 1);
    assert.equal(await runtime.load("default", "router"), null);
    assert.deepEqual(await db.selectFrom("worker_secrets").selectAll().execute(), []);
    assert.deepEqual(await service.logs("router"), []);
    await assert.rejects(service.remove("router"), (error: unknown) => error instanceof ValidationError && error.code === "not_found");
  });

  it("keeps a bounded log per worker, read newest-last or after an id", async () => {
    const { service, runtime } = await setup({ logRetention: 5 });
    await runtime.appendLogs("default", "router", [1, 2, 3].map((n) => ({ level: "log", message: `line ${n}` })));
    // the runtime's InvocationResult.logs carry epoch milliseconds
    await runtime.appendLogs("default", "other", [{ level: "error", message: "elsewhere", at: Date.parse("2026-02-03T04:05:06.789Z") }]);
    const firstThree = await service.logs("router");
    assert.deepEqual(firstThree.map((e) => e.message), ["line 1", "line 2", "line 3"]);
    assert.ok(firstThree.every((e) => e.worker === "router" && /^\d{4}-\d{2}-\d{2}T/.test(e.at)));
    await runtime.appendLogs("default", "router", [4, 5, 6, 7].map((n) => ({ level: n === 7 ? "warn" : "log", message: `line ${n}` })));
    assert.deepEqual((await service.logs("router")).map((e) => e.message), ["line 3", "line 4", "line 5", "line 6", "line 7"]);
    assert.deepEqual((await service.logs("router", { limit: 2 })).map((e) => e.message), ["line 6", "line 7"]);
    assert.deepEqual((await service.logs("router", { after: firstThree[2]!.id })).map((e) => e.message), ["line 4", "line 5", "line 6", "line 7"]);
    assert.deepEqual((await service.logs("other")).map((e) => [e.level, e.message, e.at]), [["error", "elsewhere", "2026-02-03T04:05:06.789Z"]]);
    await runtime.appendLogs("default", "router", [{ level: "log", message: "x".repeat(20_000) }]);
    const [long] = await service.logs("router", { limit: 1 });
    assert.ok(long!.message.length < 17_000 && long!.message.endsWith("… (truncated)"));
  });
});

describe("the secret key file", () => {
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "mailroute-secret-box-"));
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("is created 0600 on first use and reused after", async () => {
    const sealed = openSecretBox(dataDir).seal("value", "ctx");
    const path = join(dataDir, SECRET_KEY_FILE);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal(openSecretBox(dataDir).open(sealed, "ctx"), "value");
    assert.throws(() => openSecretBox(dataDir).open(sealed, "other ctx"), { message: /cannot decrypt/ });
  });

  it("rotates: a new first key seals, the old one still opens", async () => {
    const old = openSecretBox(dataDir).seal("old value", "ctx");
    const path = join(dataDir, SECRET_KEY_FILE);
    await writeFile(path, `${randomBytes(32).toString("base64url")}\n${await readFile(path, "utf8")}`);
    const rotated = openSecretBox(dataDir);
    assert.equal(rotated.open(old, "ctx"), "old value");
    assert.equal(createSecretBox([Buffer.from((await readFile(path, "utf8")).split("\n")[0]!, "base64url")]).open(rotated.seal("new", "ctx"), "ctx"), "new");
  });

  it("names a malformed key file without printing it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mailroute-secret-box-bad-"));
    await writeFile(join(dir, SECRET_KEY_FILE), "too-short-key\n", { mode: 0o600 });
    assert.throws(() => openSecretBox(dir), (error: Error) => error.message.includes(SECRET_KEY_FILE) && error.message.includes("32 bytes") && !error.message.includes("too-short-key"));
    await rm(dir, { recursive: true, force: true });
  });
});
