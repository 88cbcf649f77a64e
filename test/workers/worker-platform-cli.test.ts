import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CliError } from "../../src/cli/cli-error.ts";
import { workerCommand } from "../../src/cli/worker/worker-command.ts";
import { openStore } from "../../src/store/open-store.ts";
import { writeDataPoint } from "../../src/core/workers/worker-analytics.ts";
import { openSecretBox } from "../../src/workers/secret-box.ts";
import { RuntimeWorkers } from "../../src/core/workers/runtime-workers.ts";

const REPO_NODE_MODULES = join(import.meta.dirname, "..", "..", "node_modules");

interface Run {
  code: number;
  lines: string[];
  error: Error | null;
}

describe("mailroute worker: deploy checks, D1, worker test, analytics", () => {
  let project: string;
  let dataDir: string;

  before(async () => {
    project = await mkdtemp(join(tmpdir(), "mailroute-platform-cli-"));
    dataDir = join(project, "data");
    await mkdir(dataDir);
    await symlink(REPO_NODE_MODULES, join(project, "node_modules"), "dir");
  });

  after(async () => {
    await rm(project, { recursive: true, force: true });
  });

  async function worker(args: string[]): Promise<Run> {
    const lines: string[] = [];
    try {
      await workerCommand([...args, "--data-dir", dataDir], { out: (line) => lines.push(line) });
      return { code: 0, lines, error: null };
    } catch (error) {
      if (error instanceof CliError) return { code: error.exitCode, lines, error };
      throw error;
    }
  }

  async function folder(name: string, files: Record<string, string>): Promise<string> {
    const dir = join(project, name);
    for (const [file, text] of Object.entries(files)) {
      await mkdir(join(dir, file, ".."), { recursive: true });
      await writeFile(join(dir, file), text);
    }
    return dir;
  }

  async function deployed(name: string): Promise<boolean> {
    const store = await openStore({ dataDir });
    try {
      return (await new RuntimeWorkers(store.db, openSecretBox(dataDir)).load("default", name)) !== null;
    } finally {
      await store.close();
    }
  }

  it("refuses a worker that does not load in workerd, with workerd's words, and stores nothing", async () => {
    const dir = await folder("throws", { "index.js": 'throw new Error("configuration missing at load");\nexport default { async email() {} };\n' });
    const run = await worker(["deploy", "throws", join(dir, "index.js"), "--compatibility-date", "2024-09-23"]);
    assert.equal(run.code, 1);
    assert.match(run.error!.message, /^worker throws does not load in the Workers runtime:[\s\S]*configuration missing at load/);
    assert.equal(await deployed("throws"), false);
  });

  it("refuses a worker whose default export has no email() handler, naming what it has", async () => {
    const dir = await folder("fetch-only", { "index.js": "export default { async fetch() { return new Response('ok'); } };\n" });
    const run = await worker(["deploy", "fetch-only", join(dir, "index.js"), "--compatibility-date", "2024-09-23"]);
    assert.equal(run.code, 1);
    assert.equal(run.error!.message, "worker fetch-only has no email() handler: its default export has fetch()");
    assert.equal(await deployed("fetch-only"), false);
  });

  it("refuses bindings mailroute cannot provide, naming them, unless --allow-missing-bindings", async () => {
    const dir = await folder("durable", {
      "index.js": "export default { async email(message, env) { await env.COUNTER.idFromName('x'); } };\n",
      "wrangler.toml": 'name = "durable"\nmain = "index.js"\ncompatibility_date = "2024-09-23"\n[[durable_objects.bindings]]\nname = "COUNTER"\nclass_name = "Counter"\nscript_name = "elsewhere"\n[ai]\nbinding = "AI"\n',
    });
    const refused = await worker(["deploy", "durable", "--config", join(dir, "wrangler.toml")]);
    assert.equal(refused.code, 1);
    assert.match(refused.error!.message, /declares bindings mailroute cannot provide: .*COUNTER \(durable_object_namespace\).*AI \(ai: no model runs here/);
    assert.equal(await deployed("durable"), false);

    const allowed = await worker(["deploy", "durable", "--config", join(dir, "wrangler.toml"), "--allow-missing-bindings"]);
    assert.equal(allowed.code, 0, allowed.error?.message);
    assert.match(allowed.lines.join("\n"), /warning: deployed without COUNTER \(durable_object_namespace\)/);
    assert.match(allowed.lines.join("\n"), /missing COUNTER \(durable_object_namespace\), AI \(ai\)/);

    // at run time the missing binding fails the message loudly: `worker test` shows the 451
    await writeFile(join(project, "message.eml"), "From: Alice <alice@sender.example>\r\nTo: hello@example.com\r\nSubject: Hi\r\n\r\nHello\r\n");
    const test = await worker(["test", "durable", "--eml", join(project, "message.eml")]);
    assert.equal(test.code, 0, test.error?.message);
    // the sender hears only an incident id (main's private worker errors); the error is the operator's
    assert.match(test.lines.join("\n"), /the sender would hear: 451 4\.3\.0 .*failed \(incident [0-9a-f]{12}\)/);
    assert.doesNotMatch(test.lines.join("\n"), /the sender would hear: .*COUNTER/);
    assert.match(test.lines.join("\n"), /error: binding COUNTER \(durable_object_namespace\) is not available/);
  });

  it("applies D1 migrations at deploy as wrangler does, and `worker d1 execute` reads what the worker wrote", async () => {
    const dir = await folder("ledger", {
      "src/index.ts": `export default {
        async email(message: { from: string; forward(to: string): Promise<void> }, env: { DB: D1 }) {
          await env.DB.prepare("INSERT INTO senders (address) VALUES (?)").bind(message.from).run();
          const row = await env.DB.prepare("SELECT count(*) AS n FROM senders").first<{ n: number }>();
          console.log("senders " + row?.n);
          await message.forward("archive@example.net");
        },
      };
      interface D1 { prepare(sql: string): { bind(...v: unknown[]): { run(): Promise<unknown> }; first<T>(): Promise<T | null> } }
      `,
      "migrations/0001_senders.sql": "CREATE TABLE senders (id INTEGER PRIMARY KEY, address TEXT NOT NULL);\n",
      "migrations/0002_index.sql": "CREATE INDEX senders_address ON senders (address);\n",
      "wrangler.jsonc": JSON.stringify({ name: "ledger", main: "src/index.ts", compatibility_date: "2024-09-23", d1_databases: [{ binding: "DB", database_name: "ledger-db", database_id: "7f1c5e0a-0000-4000-8000-000000000001" }] }),
    });
    const deploy = await worker(["deploy", "ledger", "--config", join(dir, "wrangler.jsonc")]);
    assert.equal(deploy.code, 0, deploy.error?.message);
    assert.match(deploy.lines.join("\n"), /D1 DB: applied 0001_senders\.sql, 0002_index\.sql/);
    assert.match(deploy.lines.join("\n"), /d1 DB→ledger-db/);

    await writeFile(join(project, "ledger.eml"), "From: Bob <bob@sender.example>\r\nTo: ledger@example.com\r\nSubject: Invoice 42\r\n\r\nPay\r\n");
    const test = await worker(["test", "ledger", "--eml", join(project, "ledger.eml"), "--from", "bob@sender.example"]);
    assert.equal(test.code, 0, test.error?.message);
    const printed = test.lines.join("\n");
    assert.match(printed, /outcome|forwarded/);
    assert.match(printed, /forward → archive@example\.net/);
    assert.match(printed, /the sender would hear: 250 2\.0\.0 /);
    assert.match(printed, /senders 1/);
    assert.match(printed, /nothing was delivered/);

    const select = await worker(["d1", "execute", "ledger-db", "--command", "SELECT address FROM senders", "--json"]);
    assert.equal(select.code, 0, select.error?.message);
    assert.deepEqual((JSON.parse(select.lines.join("\n")) as { results: unknown[] }[])[0]!.results, [{ address: "bob@sender.example" }]);
    await writeFile(join(project, "more.sql"), "INSERT INTO senders (address) VALUES ('carol@x.test');\nINSERT INTO senders (address) VALUES ('dave@x.test');\n");
    assert.equal((await worker(["d1", "execute", "DB", "--file", join(project, "more.sql")])).code, 0);
    const count = await worker(["d1", "execute", "ledger-db", "--command", "SELECT count(*) AS n FROM senders"]);
    assert.deepEqual(count.lines, ["n", "3"]);
    assert.equal((await worker(["d1", "execute", "nope", "--command", "SELECT 1"])).code, 1);
    assert.equal((await worker(["d1", "execute", "ledger-db"])).code, 2);
  });

  it("lists Analytics Engine data points of a dataset", async () => {
    const store = await openStore({ dataDir });
    try {
      await writeDataPoint(store.db, "default", "mail_stats", { indexes: ["example.com"], blobs: ["alice@x.test", "spam"], doubles: [2048] }, new Date("2026-01-01T00:00:00Z"));
      await writeDataPoint(store.db, "default", "mail_stats", { indexes: ["example.org"], blobs: ["bob@x.test"], doubles: [10, 1] }, new Date("2026-01-02T00:00:00Z"));
    } finally {
      await store.close();
    }
    const run = await worker(["analytics", "mail_stats", "--index", "example.com"]);
    assert.equal(run.code, 0, run.error?.message);
    assert.deepEqual(run.lines, ["TIMESTAMP                 INDEX1       BLOB1         BLOB2  DOUBLE1", "2026-01-01T00:00:00.000Z  example.com  alice@x.test  spam   2048"]);
    const json = await worker(["analytics", "mail_stats", "--json"]);
    assert.equal((JSON.parse(json.lines.join("\n")) as unknown[]).length, 2);
  });
});
