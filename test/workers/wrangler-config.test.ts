import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { findWranglerConfig, parseWranglerConfig, readWranglerConfig, WranglerConfigError } from "../../src/workers/wrangler-config.ts";

const TOML = `
name = "inbox-router"
main = "src/index.ts"
compatibility_date = "2024-09-23"
compatibility_flags = ["nodejs_compat"]

[vars]
GREETING = "hello"
PORT = "8080"
RETRIES = 3
ENABLED = true
ROUTES = { sales = "a@x.test", support = ["b@y.test", "c@z.test"] }
SINCE = 2024-01-02

[[kv_namespaces]]
binding = "CONFIG"
id = "0f2ac74b498b48028cb68387c421e279"
preview_id = "ignored"

[[send_email]]
name = "NOTIFY"
destination_address = "ops@example.net"

[[send_email]]
name = "ANYONE"
allowed_destination_addresses = ["a@example.net", "b@example.net"]
allowed_sender_addresses = ["bot@example.com"]

[[send_email]]
name = "OPEN"
`;

const JSONC = `{
  // comments and trailing commas, as wrangler accepts
  "$schema": "node_modules/wrangler/config-schema.json",
  "name": "inbox-router",
  "main": "./src/index.ts",
  "compatibility_date": "2024-09-23",
  "compatibility_flags": ["nodejs_compat"],
  "vars": {
    "GREETING": "hello",
    "PORT": "8080",
    "RETRIES": 3,
    "ENABLED": true,
    "ROUTES": { "sales": "a@x.test", "support": ["b@y.test", "c@z.test"] },
    "SINCE": "2024-01-02",
  },
  "kv_namespaces": [{ "binding": "CONFIG", "id": "0f2ac74b498b48028cb68387c421e279", "preview_id": "ignored" }],
  "send_email": [
    { "name": "NOTIFY", "destination_address": "ops@example.net" },
    { "name": "ANYONE", "allowed_destination_addresses": ["a@example.net", "b@example.net"], "allowed_sender_addresses": ["bot@example.com"] },
    { "name": "OPEN" },
  ],
}`;

const EXPECTED = {
  name: "inbox-router",
  main: "/project/src/index.ts",
  compatibilityDate: "2024-09-23",
  compatibilityFlags: ["nodejs_compat"],
  vars: { GREETING: "hello", PORT: "8080", RETRIES: 3, ENABLED: true, ROUTES: { sales: "a@x.test", support: ["b@y.test", "c@z.test"] }, SINCE: "2024-01-02" },
  kv: [{ binding: "CONFIG", namespace: "0f2ac74b498b48028cb68387c421e279" }],
  sendEmail: [
    { name: "NOTIFY", destinationAddress: "ops@example.net" },
    { name: "ANYONE", allowedDestinationAddresses: ["a@example.net", "b@example.net"], allowedSenderAddresses: ["bot@example.com"] },
    { name: "OPEN" },
  ],
  d1: [],
  triggers: { routes: [], workersDev: true, queueConsumers: [] },
  warnings: [],
};

describe("reading wrangler files", () => {
  it("reads wrangler.toml: bindings, vars keeping their types, main resolved against the file", () => {
    const config = parseWranglerConfig(TOML, "/project/wrangler.toml");
    assert.deepEqual({ ...config, path: undefined }, { ...EXPECTED, path: undefined });
    // plain data: what JSON.stringify and the worker's env will see
    assert.equal(Object.getPrototypeOf(config.vars["ROUTES"]), Object.prototype);
    assert.equal(JSON.stringify(config.vars["SINCE"]), '"2024-01-02"');
  });

  it("reads wrangler.jsonc (and .json) the same way, comments and trailing commas included", () => {
    assert.deepEqual({ ...parseWranglerConfig(JSONC, "/project/wrangler.jsonc"), path: undefined }, { ...EXPECTED, path: undefined });
    assert.deepEqual({ ...parseWranglerConfig(JSONC, "/project/wrangler.json"), path: undefined }, { ...EXPECTED, path: undefined });
  });

  it("accepts a minimal file and an unquoted TOML date", () => {
    const config = parseWranglerConfig('[[send_email]]\nname = "EMAIL"\n', "wrangler.toml");
    assert.deepEqual(config, { path: "wrangler.toml", name: null, main: null, compatibilityDate: null, compatibilityFlags: [], vars: {}, kv: [], sendEmail: [{ name: "EMAIL" }], d1: [], triggers: { routes: [], workersDev: true, queueConsumers: [] }, warnings: [] });
    assert.equal(parseWranglerConfig("compatibility_date = 2024-09-23", "wrangler.toml").compatibilityDate, "2024-09-23");
  });

  it("warns about settings mailroute does not apply instead of dropping them silently", () => {
    const config = parseWranglerConfig('[[durable_objects.bindings]]\nname = "DO"\nclass_name = "C"\n[env.staging]\nname = "x"\n[build]\ncommand = "npm run build"\n', "wrangler.toml");
    assert.deepEqual(config.warnings, [
      "wrangler.toml: durable_objects is not supported by mailroute; those bindings will be missing from env",
      "wrangler.toml: [env.*] sections apply only with --env <name>; without it the top-level settings are deployed",
      "wrangler.toml: build.command is not run; run it before deploying",
    ]);
  });

  it("reads D1 databases with their migrations folder, and the triggers: routes, workers_dev, queue consumers", () => {
    const config = parseWranglerConfig(
      'route = "hooks.example.com/bot*"\n[[d1_databases]]\nbinding = "DB"\ndatabase_name = "mail"\ndatabase_id = "id-1"\nmigrations_dir = "sql"\n[[queues.consumers]]\nqueue = "jobs"\nmax_retries = 5\ndead_letter_queue = "jobs-dlq"\n',
      "/srv/bot/wrangler.toml",
    );
    assert.deepEqual(config.d1, [{ binding: "DB", databaseName: "mail", databaseId: "id-1", migrationsDir: "/srv/bot/sql" }]);
    assert.deepEqual(config.triggers, {
      routes: [{ pattern: "hooks.example.com/bot*", customDomain: false }],
      workersDev: false,
      queueConsumers: [{ queue: "jobs", maxBatchSize: 10, maxBatchTimeoutSeconds: 5, maxRetries: 5, deadLetterQueue: "jobs-dlq", retryDelaySeconds: 0 }],
    });
    assert.deepEqual(config.warnings, []);
    assert.equal(parseWranglerConfig("", "/srv/x/wrangler.toml").triggers.workersDev, true, "workers_dev is on without routes, as in wrangler");
    assert.throws(() => parseWranglerConfig("[[queues.consumers]]\nqueue = \"q\"\nmax_batch_size = 500\n", "wrangler.toml"), { message: "wrangler.toml: queues.consumers[0].max_batch_size must be a whole number from 1 to 100, not number 500" });
  });

  const failures: [string, string, string][] = [
    ["wrangler.toml", 'name = "x"\nmain = \n', "wrangler.toml:2:8: invalid TOML: "],
    ["wrangler.jsonc", '{\n  "name": "x"\n  "main": "y"\n}', "wrangler.jsonc:3:3: invalid JSON: CommaExpected"],
    ["wrangler.toml", "[[kv_namespaces]]\nbinding = \"CONFIG\"\n", "wrangler.toml: kv_namespaces[0].id is required (the KV namespace id; `worker kv` commands name the namespace by it)"],
    ["wrangler.toml", "[[kv_namespaces]]\nbinding = 3\nid = \"x\"\n", "wrangler.toml: kv_namespaces[0].binding must be a non-empty string, not number 3"],
    ["wrangler.jsonc", '{ "kv_namespaces": { "binding": "A", "id": "x" } }', "wrangler.jsonc: kv_namespaces must be a list of tables ([[kv_namespaces]] in TOML), not a table"],
    ["wrangler.toml", 'compatibility_date = "23/09/2024"', 'wrangler.toml: compatibility_date "23/09/2024" is not a date "YYYY-MM-DD"'],
    ["wrangler.toml", 'compatibility_date = "2024-02-30"', 'wrangler.toml: compatibility_date "2024-02-30" is not a date "YYYY-MM-DD"'],
    ["wrangler.toml", 'compatibility_flags = "nodejs_compat"', 'wrangler.toml: compatibility_flags must be a list of strings, not string "nodejs_compat"'],
    ["wrangler.toml", 'vars = "x"', 'wrangler.toml: vars must be a table of NAME = value, not string "x"'],
    ["wrangler.toml", '[[send_email]]\ndestination_address = "a@b.test"\n', "wrangler.toml: send_email[0].name is required"],
    ["wrangler.toml", '[[send_email]]\nname = "E"\ndestination_address = "not-an-address"\n', 'wrangler.toml: send_email[0].destination_address "not-an-address" is not an email address'],
    ["wrangler.toml", '[[send_email]]\nname = "E"\nallowed_sender_addresses = ["ok@a.test", "bad"]\n', 'wrangler.toml: send_email[0].allowed_sender_addresses[1] "bad" is not an email address'],
    ["wrangler.toml", '[[send_email]]\nname = "E"\ndestination_address = "a@b.test"\nallowed_destination_addresses = ["c@d.test"]\n', "wrangler.toml: send_email[0].destination_address and allowed_destination_addresses cannot both be set: a binding has one fixed destination or an allow-list"],
    ["wrangler.toml", '[vars]\nCONFIG = "x"\n[[kv_namespaces]]\nbinding = "CONFIG"\nid = "n"\n', 'wrangler.toml: kv_namespaces[0].binding binding "CONFIG" is already defined by vars.CONFIG'],
    ["wrangler.jsonc", "[]", "wrangler.jsonc: must contain a table (TOML) or an object (JSON) at the top level"],
  ];
  for (const [file, text, message] of failures) {
    it(`names the file and field: ${message.slice(0, 70)}`, () => {
      assert.throws(() => parseWranglerConfig(text, file), (error: unknown) => {
        assert.ok(error instanceof WranglerConfigError);
        assert.ok(error.message.startsWith(message), `got: ${error.message}`);
        return true;
      });
    });
  }
});

describe("finding the wrangler file", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "mailroute-wrangler-"));
    await mkdir(join(root, "worker", "src", "deep"), { recursive: true });
    await writeFile(join(root, "worker", "wrangler.toml"), 'name = "w"\n');
    await writeFile(join(root, "worker", "wrangler.jsonc"), '{ "name": "w" }');
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("finds the nearest one above a folder, preferring wrangler.json(c) as wrangler does", async () => {
    assert.equal(await findWranglerConfig(join(root, "worker", "src", "deep")), join(root, "worker", "wrangler.jsonc"));
    assert.equal(await findWranglerConfig(root), null);
  });

  it("names a file that cannot be read", async () => {
    await assert.rejects(readWranglerConfig(join(root, "missing.toml")), { message: `${join(root, "missing.toml")}: cannot be read: ENOENT` });
  });
});
