import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, afterEach, before, beforeEach, it } from "node:test";
import { CliError } from "../../src/cli/cli-error.ts";
import { workerCommand, type WorkerCommandIo } from "../../src/cli/worker/worker-command.ts";
import { ValidationError } from "../../src/core/validation-error.ts";
import { readConfigVersion } from "../../src/store/config-version.ts";
import { openSecretBox } from "../../src/workers/secret-box.ts";
import { RuntimeWorkers } from "../../src/core/workers/runtime-workers.ts";
import { parseClusterKey } from "../../src/config/cluster-key.ts";
import { clusterSecretBox } from "../../src/cli/node-secrets.ts";
import { TEST_CLUSTER_KEY } from "../support/mailroute-harness.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

const REPO_NODE_MODULES = join(import.meta.dirname, "..", "..", "node_modules");

const WORKER_SOURCE = `
import PostalMime from "postal-mime";

interface Env { GREETING: string; CONFIG: KVNamespaceLike }
interface KVNamespaceLike { put(key: string, value: string): Promise<void> }

export default {
  async email(message: { raw: ReadableStream; setReject(reason: string): void }, env: Env): Promise<void> {
    const email = await PostalMime.parse(message.raw);
    await env.CONFIG.put("last-subject", email.subject ?? "");
    if (!email.subject) message.setReject(env.GREETING);
  },
};
`;

const WRANGLER_TOML = `
name = "parser"
main = "src/index.ts"
compatibility_date = "2024-09-23"
compatibility_flags = ["nodejs_compat"]

[vars]
GREETING = "hello"
PORT = "8080"
RETRIES = 3
ROUTES = { sales = ["a@x.test"] }

[[kv_namespaces]]
binding = "CONFIG"
id = "config-ns"

[[send_email]]
name = "NOTIFY"
destination_address = "ops@example.net"
`;

interface Run {
  code: number;
  lines: string[];
  error: Error | null;
}

let project: string;

before(async () => {
  project = await mkdtemp(join(tmpdir(), "mailroute-worker-cli-"));
  await mkdir(join(project, "src"));
  await symlink(REPO_NODE_MODULES, join(project, "node_modules"), "dir");
  await writeFile(join(project, "src", "index.ts"), WORKER_SOURCE);
  await writeFile(join(project, "wrangler.toml"), WRANGLER_TOML);
});

after(async () => {
  await rm(project, { recursive: true, force: true });
});

forEachDatabase((target) => {
  let keyDir: string;

  beforeEach(async () => {
    keyDir = await mkdtemp(join(tmpdir(), "mailroute-worker-keys-"));
    // the store exists, as after `mailroute init`: worker commands never create one
    await target.open();
    // a cluster's store seals secrets with the key every node has, as the operator's shell would
    if (target.label === "postgres") process.env["MAILROUTE_CLUSTER_KEY"] = TEST_CLUSTER_KEY;
  });
  afterEach(async () => {
    delete process.env["MAILROUTE_CLUSTER_KEY"];
    await rm(keyDir, { recursive: true, force: true });
  });

  /** Where the CLI finds the store and the secret key: beside SQLite, or a data dir next to PostgreSQL. */
  function storeArgs(): string[] {
    const options = target.options();
    return options.databaseUrl === undefined ? ["--data-dir", options.dataDir] : ["--database", options.databaseUrl, "--data-dir", keyDir];
  }

  function secretDir(): string {
    const options = target.options();
    return options.databaseUrl === undefined ? options.dataDir : keyDir;
  }

  /** Runs the command in-process, as main() would, with a capturing Output. */
  async function worker(args: string[], io: WorkerCommandIo = {}): Promise<Run> {
    const lines: string[] = [];
    try {
      await workerCommand([...args, ...storeArgs()], { out: (line) => lines.push(line) }, io);
      return { code: 0, lines, error: null };
    } catch (error) {
      if (error instanceof CliError) return { code: error.exitCode, lines, error };
      if (error instanceof ValidationError) return { code: 1, lines, error };
      throw error;
    }
  }

  async function workers(): Promise<{ store: RuntimeWorkers; db: Awaited<ReturnType<typeof target.open>>["db"] }> {
    const opened = await target.open();
    // what a node opens them with: the data directory's key, or the cluster's shared sealed box
    const box = target.label === "postgres" ? await clusterSecretBox(opened, parseClusterKey(TEST_CLUSTER_KEY, "test")) : openSecretBox(secretDir());
    return { store: new RuntimeWorkers(opened.db, box), db: opened.db };
  }

  const stdin = (text: string): WorkerCommandIo => ({ stdin: Readable.from([Buffer.from(text)]) });

  it("deploys a TypeScript worker with an npm dependency from its folder's wrangler.toml, --var and --kv on top", async () => {
    const run = await worker(["deploy", "parser", join(project, "src", "index.ts"), "--var", "PORT=9090", "--var", "EXTRA=a=b", "--kv", "CACHE=cache-ns", "--kv", "CONFIG=config-v2"]);
    assert.equal(run.code, 0, run.error?.message);
    assert.match(run.lines.join("\n"), /^deployed worker parser \(version [0-9a-f]{12}, [\d.]+ KiB, \d+ module\(s\), config .*wrangler\.toml\)$/m);
    assert.match(run.lines.join("\n"), /bindings: vars GREETING, PORT, RETRIES, ROUTES, EXTRA; kv CONFIG→config-v2, CACHE→cache-ns; send_email NOTIFY/);

    const { store } = await workers();
    const definition = await store.load("default", "parser");
    assert.ok(definition !== null);
    assert.deepEqual(definition.vars, { GREETING: "hello", PORT: "9090", RETRIES: 3, ROUTES: { sales: ["a@x.test"] }, EXTRA: "a=b" });
    assert.deepEqual(definition.kv, [{ binding: "CONFIG", namespace: "config-v2" }, { binding: "CACHE", namespace: "cache-ns" }]);
    assert.deepEqual(definition.sendEmail, [{ name: "NOTIFY", destinationAddress: "ops@example.net" }]);
    assert.equal(definition.compatibilityDate, "2024-09-23");
    assert.deepEqual(definition.compatibilityFlags, ["nodejs_compat"]);
    assert.deepEqual(definition.secrets, {});
    // one module: postal-mime inside; the only imports left are the runtime's own (nodejs_compat's node:*)
    const imports = [...definition.bundle.matchAll(/^\s*import\s[^"']*["']([^"']+)["']/gm)].map((match) => match[1]!);
    assert.ok(imports.every((specifier) => /^(node|cloudflare):/.test(specifier)), imports.join(", "));
    assert.match(definition.bundle, /PostalMime/);
    assert.match(definition.bundle, /export\s*\{[^}]*as default/);
  });

  it("takes the entry from the config's main, with --config naming a wrangler.jsonc", async () => {
    const other = await mkdtemp(join(project, "jsonc-"));
    await writeFile(join(other, "wrangler.jsonc"), `{ // the minimal file from the docs, plus main\n "main": "../src/index.ts", "send_email": [{ "name": "EMAIL" }], }`);
    const run = await worker(["deploy", "from-jsonc", "--config", join(other, "wrangler.jsonc"), "--compatibility-date", "2025-01-01", "--json"]);
    assert.equal(run.code, 0, run.error?.message);
    const json = JSON.parse(run.lines.join("\n")) as { changed: boolean; worker: { name: string; version: string }; warnings: string[] };
    assert.equal(json.changed, true);
    assert.equal(json.worker.name, "from-jsonc");
    const definition = await (await workers()).store.load("default", "from-jsonc");
    assert.deepEqual(definition?.sendEmail, [{ name: "EMAIL" }]);
    assert.equal(definition?.compatibilityDate, "2025-01-01");
    assert.deepEqual(definition?.kv, []);
  });

  it("puts a secret read from stdin, never echoing it, stored encrypted; redeploys keep it and move the version", async () => {
    const entry = join(project, "src", "index.ts");
    const first = await worker(["deploy", "parser", entry, "--json"]);
    const firstVersion = (JSON.parse(first.lines.join("\n")) as { worker: { version: string } }).worker.version;
    const { db, store } = await workers();
    const configVersion = await readConfigVersion(db);

    const plaintext = "hunter2-super-secret";
    const put = await worker(["secret", "put", "parser", "API_TOKEN"], stdin(`${plaintext}\n`));
    assert.equal(put.code, 0, put.error?.message);
    assert.match(put.lines.join("\n"), /^added secret API_TOKEN of worker parser/);
    assert.ok(!put.lines.join("\n").includes(plaintext), "the value is never printed");
    assert.equal(await readConfigVersion(db), configVersion + 1, "a running server notices the secret");

    const [row] = await db.selectFrom("worker_secrets").select("ciphertext").where("worker", "=", "parser").execute();
    assert.ok(row !== undefined && !row.ciphertext.includes(plaintext) && !row.ciphertext.includes(Buffer.from(plaintext).toString("base64")));
    const loaded = await store.load("default", "parser");
    assert.deepEqual(loaded?.secrets, { API_TOKEN: plaintext }, "decrypted for the runtime, trailing newline from echo removed");
    assert.notEqual(loaded?.version, firstVersion);

    const unchanged = await worker(["deploy", "parser", entry]);
    assert.match(unchanged.lines.join("\n"), /already deployed with this bundle and bindings/);
    await writeFile(join(project, "src", "index.ts"), `${WORKER_SOURCE}\nconsole.log("v2");\n`);
    try {
      const changed = await worker(["deploy", "parser", entry]);
      assert.match(changed.lines.join("\n"), /^deployed worker parser/m);
    } finally {
      await writeFile(join(project, "src", "index.ts"), WORKER_SOURCE);
    }
    const redeployed = await store.load("default", "parser");
    assert.notEqual(redeployed?.version, loaded?.version);
    assert.deepEqual(redeployed?.secrets, { API_TOKEN: plaintext });

    assert.deepEqual((await worker(["secret", "list", "parser"])).lines, ["API_TOKEN"]);
    const onCommandLine = await worker(["secret", "put", "parser", "API_TOKEN", plaintext]);
    assert.equal(onCommandLine.code, 2);
    assert.match(onCommandLine.error!.message, /read from stdin, never from the command line/);
    assert.equal((await worker(["secret", "put", "parser", "EMPTY"], stdin(""))).error?.message, "the secret value is empty");
    assert.equal((await worker(["secret", "delete", "parser", "API_TOKEN"])).code, 0);
    assert.deepEqual((await store.load("default", "parser"))?.secrets, {});
  });

  it("lists and removes workers", async () => {
    assert.deepEqual((await worker(["list"])).lines, ["no workers yet: mailroute worker deploy <name> <entry>"]);
    await worker(["deploy", "parser", join(project, "src", "index.ts")]);
    const list = await worker(["list"]);
    assert.match(list.lines[0]!, /^NAME\s+VERSION\s+BINDINGS\s+SIZE\s+MODIFIED$/);
    assert.match(list.lines[1]!, /^parser\s+[0-9a-f]{12}\s+vars GREETING/);
    const json = JSON.parse((await worker(["list", "--json"])).lines.join("\n")) as { name: string }[];
    assert.deepEqual(json.map((w) => w.name), ["parser"]);
    const removed = await worker(["remove", "parser"]);
    assert.match(removed.lines[0]!, /^removed worker parser/);
    const again = await worker(["remove", "parser"]);
    assert.equal(again.code, 1);
    assert.equal(again.error?.message, 'worker: no worker named "parser" is deployed');
  });

  it("reads and writes KV namespaces by id", async () => {
    assert.equal((await worker(["kv", "put", "config-ns", "routes/sales", "a@x.test"])).code, 0);
    assert.equal((await worker(["kv", "put", "config-ns", "routes/support", "-", "--metadata", '{"owner":"ops"}', "--ttl", "3600"], stdin("b@y.test"))).code, 0);
    assert.equal((await worker(["kv", "put", "config-ns", "other", "x"])).code, 0);
    assert.deepEqual((await worker(["kv", "get", "config-ns", "routes/support"])).lines, ["b@y.test"]);
    assert.deepEqual(JSON.parse((await worker(["kv", "get", "config-ns", "routes/support", "--json"])).lines.join("\n")), { namespace: "config-ns", key: "routes/support", value: "b@y.test", metadata: { owner: "ops" } });
    const listed = JSON.parse((await worker(["kv", "list", "config-ns", "--prefix", "routes/", "--json"])).lines.join("\n")) as { keys: { name: string; expiration?: number; metadata?: unknown }[]; list_complete: boolean };
    assert.deepEqual(listed.keys.map((k) => [k.name, k.metadata ?? null]), [["routes/sales", null], ["routes/support", { owner: "ops" }]]);
    assert.ok(listed.keys[1]!.expiration! > Date.now() / 1000 + 3500);
    const paged = await worker(["kv", "list", "config-ns", "--limit", "1"]);
    assert.match(paged.lines.at(-1)!, /^more keys: --cursor \S+$/);
    assert.equal((await worker(["kv", "delete", "config-ns", "other"])).code, 0);
    const missing = await worker(["kv", "get", "config-ns", "other"]);
    assert.equal(missing.code, 1);
    assert.match(missing.error!.message, /has no key "other"/);
    const tooShort = await worker(["kv", "put", "config-ns", "k", "v", "--ttl", "10"]);
    assert.equal(tooShort.error?.message, "KV PUT failed: 400 Invalid expiration_ttl of 10. Expiration TTL must be at least 60.");
  });

  it("tails a worker's logs: recent lines, then new ones until stopped", async () => {
    await worker(["deploy", "parser", join(project, "src", "index.ts")]);
    const { store } = await workers();
    await store.appendLogs("default", "parser", [{ level: "log", message: "first" }, { level: "warn", message: "second" }]);
    const once = await worker(["tail", "parser", "--once"]);
    assert.equal(once.code, 0, once.error?.message);
    assert.deepEqual(once.lines.map((line) => line.replace(/^\S+\s+/, "")), ["log    first", "warn   second"]);
    const json = await worker(["tail", "parser", "--once", "--json", "--lines", "1"]);
    assert.deepEqual(json.lines.map((line) => (JSON.parse(line) as { message: string }).message), ["second"]);

    const stop = new AbortController();
    const lines: string[] = [];
    const following = workerCommand(["tail", "parser", "--interval", "50", ...storeArgs()], { out: (line) => lines.push(line) }, { signal: stop.signal });
    await waitFor(() => lines.some((line) => line.startsWith("following")));
    await store.appendLogs("default", "parser", [{ level: "error", message: "third" }]);
    await waitFor(() => lines.some((line) => line.endsWith("third")));
    stop.abort();
    await following;
    assert.deepEqual(lines.filter((line) => /first|second|third/.test(line)).map((line) => line.split(/\s+/).at(-1)), ["first", "second", "third"]);

    const unknown = await worker(["tail", "nobody", "--once"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.error!.message, /no worker named "nobody"/);
  });

  it("explains bundle, config and usage mistakes with the file, line and field", async () => {
    const broken = await mkdtemp(join(project, "broken-"));
    await writeFile(join(broken, "worker.ts"), "export default {\n  email( {\n};\n");
    const bundle = await worker(["deploy", "broken", join(broken, "worker.ts")]);
    assert.equal(bundle.code, 1);
    assert.match(bundle.error!.message, /worker\.ts:\d+:\d+: /);
    assert.equal(await (await workers()).store.load("default", "broken"), null, "nothing deployed");

    await writeFile(join(broken, "wrangler.toml"), "[[kv_namespaces]]\nbinding = \"KV\"\n");
    await writeFile(join(broken, "ok.ts"), "export default { email() {} };\n");
    const config = await worker(["deploy", "broken", join(broken, "ok.ts")]);
    assert.equal(config.code, 1);
    assert.match(config.error!.message, /wrangler\.toml: kv_namespaces\[0\]\.id is required/);

    const future = await worker(["deploy", "x", join(project, "src", "index.ts"), "--compatibility-date", "2999-01-01"]);
    assert.match(future.error!.message, /^compatibility_date 2999-01-01 is later than the newest the Workers runtime here supports \(\d{4}-\d{2}-\d{2}\)$/);
    assert.equal((await worker(["deploy", "x", join(project, "src", "index.ts"), "--compatibility-date", "soon"])).code, 2);

    assert.equal((await worker(["deploy"])).code, 2);
    assert.equal((await worker(["deploy", "x", join(broken, "ok.ts"), "--var", "NOEQUALS"])).error?.message, '--var "NOEQUALS" is not KEY=VALUE');
    // commander's own words, as for every other command: a flag of another subcommand is unknown here
    const stray = await worker(["list", "--ttl", "60"]);
    assert.deepEqual([stray.code, stray.error?.message], [2, "unknown option '--ttl'"]);
    const unknown = await worker(["frobnicate"]);
    assert.deepEqual([unknown.code, unknown.error?.message], [2, "unknown command 'frobnicate'"]);
    assert.equal((await worker(["deploy", "Not A Name", join(project, "src", "index.ts")])).error?.message.startsWith('name: "Not A Name" is not a worker name'), true);
  });
});

async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
