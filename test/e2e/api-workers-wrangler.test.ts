/**
 * The real `wrangler` (4.x, a dev dependency) deploys an Email Worker to a real mailroute over
 * loopback through the Workers Scripts API — only CLOUDFLARE_API_BASE_URL, the token and the
 * account changed — then mail sent over SMTP is handled by it; `wrangler secret put` and
 * `wrangler kv key put --remote` reach the running worker; another account's token neither sees
 * nor changes it; a bundle that cannot load is refused with a catalogue error naming why.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { request } from "node:http";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { createRequire } from "node:module";
import Cloudflare from "cloudflare";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import { createServices } from "../../src/core/services.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

const WRANGLER = join(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin", "wrangler.js");

// Forwards to DESTINATION (a var), stamping what it read from its secret and its KV namespace.
const WORKER = `
export default {
  async email(message, env) {
    const greeting = await env.MAP.get("greeting");
    let note = "none";
    try { note = (await env.DB.prepare("SELECT text FROM notes LIMIT 1").first("text")) ?? "none"; } catch { /* no table yet */ }
    console.log("handled with note " + note);
    await message.forward(env.DESTINATION, new Headers({
      "X-Handled-By": "wrangler-worker",
      "X-Secret-Seen": env.TAG ?? "none",
      "X-Kv-Seen": greeting ?? "none",
      "X-D1-Seen": note,
    }));
  },
};`;

const WRANGLER_TOML = `name = "mailer"
main = "src/index.js"
compatibility_date = "2024-09-23"

[vars]
DESTINATION = "owner@dest.test"

[[kv_namespaces]]
binding = "MAP"
id = "mailer-routes"

[[d1_databases]]
binding = "DB"
database_name = "mailer-db"
database_id = "4f8e2a6c-0d1b-4c3e-9a7f-5b6c7d8e9f01"
`;

const PERMISSIONS = ["Workers Scripts Write", "Workers KV Storage Write", "D1 Write", "Account Settings Read"].map((id) => ({ id }));

describe("wrangler deploys Email Workers to mailroute", () => {
  let h: Harness;
  let home: string;
  let project: string;
  let token: string;
  let otherToken: string;

  before(async () => {
    h = await startHarness({ destinations: ["dest.test"], settings: { "worker-deadline": "10000" } });
    home = mkdtempSync(join(tmpdir(), "mailroute-wrangler-home-"));
    project = mkdtempSync(join(tmpdir(), "mailroute-wrangler-project-"));
    mkdirSync(join(project, "src"));
    writeFileSync(join(project, "src", "index.js"), WORKER);
    writeFileSync(join(project, "wrangler.toml"), WRANGLER_TOML);
    const services = createServices(h.configStore);
    await services.accounts(CLI_OPERATOR).create({ id: "other", name: "Other" });
    const mine = services.forAccount({ account: "default", actor: CLI_OPERATOR });
    await mine.zones.create("example.com");
    await mine.addresses.create("owner@dest.test", { verified: true });
    token = (await mine.tokens.create({ name: "wrangler", policies: [{ permission_groups: PERMISSIONS, resources: { "com.cloudflare.api.account.default": "*" } }] })).value;
    const other = services.forAccount({ account: "other", actor: CLI_OPERATOR });
    otherToken = (await other.tokens.create({ name: "other", policies: [{ permission_groups: PERMISSIONS, resources: { "com.cloudflare.api.account.other": "*" } }] })).value;
  });

  after(async () => {
    await h?.stop();
    for (const dir of [home, project]) if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => h.sinks["dest.test"]!.reset());

  function wrangler(args: string[], options: { stdin?: string; token?: string; account?: string; cwd?: string } = {}): Promise<{ code: number; out: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [WRANGLER, ...args], {
        cwd: options.cwd ?? project,
        env: {
          PATH: process.env["PATH"] ?? "",
          HOME: home,
          XDG_CONFIG_HOME: home,
          CLOUDFLARE_API_BASE_URL: `http://127.0.0.1:${h.mailroute.http.port}/client/v4`,
          CLOUDFLARE_API_TOKEN: options.token ?? token,
          CLOUDFLARE_ACCOUNT_ID: options.account ?? "default",
          WRANGLER_SEND_METRICS: "false",
          CI: "true",
        },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
      child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
      const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? 1, out });
      });
      child.stdin.end(options.stdin ?? "");
    });
  }

  async function api(path: string, init: RequestInit & { token?: string } = {}): Promise<{ status: number; body: { success: boolean; errors: { code: number; message: string }[]; result: unknown } }> {
    const response = await fetch(`http://127.0.0.1:${h.mailroute.http.port}/client/v4${path}`, { ...init, headers: { authorization: `Bearer ${init.token ?? token}`, ...(init.headers as Record<string, string> | undefined) } });
    return { status: response.status, body: (await response.json()) as never };
  }

  async function sendAndReceive(): Promise<string> {
    await h.reload();
    const { client } = await SmtpTestClient.connect(h.port);
    const envelope = await client.envelope("friend@sender.test", ["hello@example.com"]);
    assert.equal(envelope.rcpts[0]!.code, 250, envelope.rcpts[0]!.line);
    const reply = await client.data(testMessage({ from: "friend@sender.test", to: "hello@example.com" }));
    await client.quit();
    assert.equal(reply.code, 250, reply.line);
    const [message] = await h.sinks["dest.test"]!.waitForMessages(1, 20_000);
    return message!.text;
  }

  it("deploys with `wrangler deploy`, and mail to a rule naming the worker is forwarded by it", async () => {
    const deployed = await wrangler(["deploy"]);
    assert.equal(deployed.code, 0, deployed.out);
    assert.match(deployed.out, /Uploaded mailer/);
    assert.match(deployed.out, /not-served-by-mailroute/, "the workers.dev target says mailroute does not serve it");
    assert.match(deployed.out, /Current Version ID: [0-9a-f-]{36}/);
    const worker = await h.config.workers.get("mailer");
    assert.deepEqual(worker.bindings.vars, ["DESTINATION"]);
    assert.deepEqual(worker.bindings.kv, [{ binding: "MAP", namespace: "mailer-routes" }]);
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@example.com" }], actions: [{ type: "worker", value: ["mailer"] }] });
    const text = await sendAndReceive();
    assert.match(text, /\r\nX-Handled-By: wrangler-worker\r\n/i);
    assert.match(text, /\r\nX-Secret-Seen: none\r\n/i);
  });

  it("redeploys an existing worker through the versions API; a KV binding without an id inherits the deployed one", async () => {
    writeFileSync(join(project, "wrangler-inherit.toml"), WRANGLER_TOML.replace('id = "mailer-routes"\n', ""));
    const again = await wrangler(["deploy", "--var", "EXTRA:1", "--config", "wrangler-inherit.toml"]);
    assert.equal(again.code, 0, again.out);
    const worker = await h.config.workers.get("mailer");
    assert.deepEqual(worker.bindings.vars.sort(), ["DESTINATION", "EXTRA"]);
    assert.deepEqual(worker.bindings.kv, [{ binding: "MAP", namespace: "mailer-routes" }]);
    const deployments = await wrangler(["deployments", "list"]);
    assert.equal(deployments.code, 0, deployments.out);
    assert.ok(deployments.out.includes(worker.version.slice(0, 8)), deployments.out);
    // --keep-vars: EXTRA (given with --var before) stays although this upload does not name it
    const kept = await wrangler(["deploy", "--keep-vars"]);
    assert.equal(kept.code, 0, kept.out);
    assert.deepEqual((await h.config.workers.get("mailer")).bindings.vars.sort(), ["DESTINATION", "EXTRA"]);
  });

  it("deploys a worker with `routes`: its fetch() answers requests for that host, and workers_dev goes off as in wrangler", async () => {
    const hooks = join(project, "hooks");
    mkdirSync(hooks);
    writeFileSync(join(hooks, "index.js"), 'export default { async email(message) { message.setReject("no"); }, async fetch(request) { return new Response("bot heard " + new URL(request.url).pathname); } };');
    writeFileSync(join(hooks, "wrangler.toml"), 'name = "hooks"\nmain = "index.js"\ncompatibility_date = "2024-09-23"\nroutes = ["hooks.example.com/bot*"]\n');
    const deployed = await wrangler(["deploy"], { cwd: hooks });
    assert.equal(deployed.code, 0, deployed.out);
    assert.match(deployed.out, /hooks\.example\.com\/bot\*/);
    const worker = await h.config.workers.get("hooks");
    assert.deepEqual(worker.triggers.routes, [{ pattern: "hooks.example.com/bot*", customDomain: false }]);
    assert.equal(worker.triggers.workersDev, false);
    const ask = () =>
      new Promise<string>((resolve, reject) => {
        const probe = request({ host: "127.0.0.1", port: h.mailroute.http.port, path: "/bot/ping", headers: { host: "hooks.example.com" } }, (response) => {
          let text = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => (text += chunk));
          response.on("end", () => resolve(`${response.statusCode} ${text}`));
        });
        probe.on("error", reject);
        probe.end();
      });
    // the HTTP port re-reads the route table at most once a second
    let answer = await ask();
    for (let attempt = 0; attempt < 30 && !answer.startsWith("200"); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      answer = await ask();
    }
    assert.equal(answer, "200 bot heard /bot/ping");
    const listed = await api(`/zones/${(await h.config.zones.list()).items[0]!.id}/workers/routes`);
    assert.deepEqual((listed.body.result as { pattern: string; script: string }[]).map((route) => [route.pattern, route.script]), [["hooks.example.com/bot*", "hooks"]]);
    await h.config.workers.remove("hooks");
  });

  it("refuses cron triggers and custom domains (wrangler uploads, then reports those triggers failed)", async () => {
    const timed = join(project, "timed");
    mkdirSync(timed);
    writeFileSync(join(timed, "index.js"), "export default { async email(message) { message.setReject('no'); } };");
    writeFileSync(join(timed, "wrangler.toml"), 'name = "timed"\nmain = "index.js"\ncompatibility_date = "2024-09-23"\nroutes = [{ pattern = "timed.example.com", custom_domain = true }]\n\n[triggers]\ncrons = ["0 * * * *"]\n');
    const deployed = await wrangler(["deploy"], { cwd: timed });
    assert.notEqual(deployed.code, 0, deployed.out);
    assert.match(deployed.out, /Uploaded timed/);
    assert.match(deployed.out, /Some triggers failed to deploy for timed/);
    assert.match(deployed.out, /timed\/domains\/records\) failed/);
    assert.match(deployed.out, /timed\/schedules\) failed/);
    // the reasons, in the catalogue's words (wrangler writes them to its log, not the terminal)
    const cron = await api("/accounts/default/workers/scripts/timed/schedules", { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify([{ cron: "0 * * * *" }]) });
    assert.equal(cron.body.errors[0]!.code, 1011);
    assert.match(cron.body.errors[0]!.message, /^cron triggers is not supported by mailroute/);
    const domains = await api("/accounts/default/workers/scripts/timed/domains/records", { method: "PUT", headers: { "content-type": "application/json" }, body: "{}" });
    assert.match(domains.body.errors[0]!.message, /^custom domains is not supported by mailroute/);
    await h.config.workers.remove("timed");
  });

  it("`wrangler secret put` reaches the worker; `secret list` names it, never its value", async () => {
    const put = await wrangler(["secret", "put", "TAG"], { stdin: "s3cret-tag\n" });
    assert.equal(put.code, 0, put.out);
    assert.match(put.out, /Success! Uploaded secret TAG/);
    const listed = await wrangler(["secret", "list", "--format", "json"]);
    assert.equal(listed.code, 0, listed.out);
    assert.match(listed.out, /"name": "TAG"/);
    assert.doesNotMatch(listed.out, /s3cret-tag/);
    assert.match(await sendAndReceive(), /\r\nX-Secret-Seen: s3cret-tag\r\n/i);
  });

  it("`wrangler kv key put --remote` is read by the worker; get, list and delete work", async () => {
    const put = await wrangler(["kv", "key", "put", "greeting", "hello from kv", "--binding", "MAP", "--remote"]);
    assert.equal(put.code, 0, put.out);
    assert.match(await sendAndReceive(), /\r\nX-Kv-Seen: hello from kv\r\n/i);
    const got = await wrangler(["kv", "key", "get", "greeting", "--binding", "MAP", "--remote", "--text"]);
    assert.equal(got.code, 0, got.out);
    assert.match(got.out, /hello from kv/);
    const listed = await wrangler(["kv", "key", "list", "--binding", "MAP", "--remote"]);
    assert.equal(listed.code, 0, listed.out);
    assert.match(listed.out, /"name": "greeting"/);
    const namespaces = await wrangler(["kv", "namespace", "list"]);
    assert.equal(namespaces.code, 0, namespaces.out);
    assert.match(namespaces.out, /"id": "mailer-routes"/);
    const created = await wrangler(["kv", "namespace", "create", "fresh-space"]);
    assert.equal(created.code, 0, created.out);
    assert.match(created.out, /fresh-space/);
    writeFileSync(join(project, "bulk.json"), JSON.stringify([{ key: "one", value: "1" }, { key: "two", value: Buffer.from("zwei").toString("base64"), base64: true }]));
    const bulkPut = await wrangler(["kv", "bulk", "put", "bulk.json", "--binding", "MAP", "--remote"]);
    assert.equal(bulkPut.code, 0, bulkPut.out);
    assert.equal(new TextDecoder().decode((await h.config.kv.get("mailer-routes", "two"))!.value), "zwei");
    writeFileSync(join(project, "bulk-keys.json"), JSON.stringify(["one", "two"]));
    const bulkDelete = await wrangler(["kv", "bulk", "delete", "bulk-keys.json", "--binding", "MAP", "--remote", "--force"]);
    assert.equal(bulkDelete.code, 0, bulkDelete.out);
    assert.equal(await h.config.kv.get("mailer-routes", "one"), null);
    const deleted = await wrangler(["kv", "key", "delete", "greeting", "--binding", "MAP", "--remote"]);
    assert.equal(deleted.code, 0, deleted.out);
    assert.equal(await h.config.kv.get("mailer-routes", "greeting"), null);
  });

  it("`wrangler d1 execute --remote --command` runs SQL the worker then reads; --file is refused saying why", async () => {
    const created = await wrangler(["d1", "execute", "mailer-db", "--remote", "--command", "CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('noted in d1')"]);
    assert.equal(created.code, 0, created.out);
    const selected = await wrangler(["d1", "execute", "DB", "--remote", "--json", "--command", "SELECT text FROM notes"]);
    assert.equal(selected.code, 0, selected.out);
    assert.match(selected.out, /"text": "noted in d1"/);
    assert.match(await sendAndReceive(), /\r\nX-D1-Seen: noted in d1\r\n/i);
    const bad = await wrangler(["d1", "execute", "mailer-db", "--remote", "--command", "SELECT * FROM no_such_table"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.out, /no such table: no_such_table/);
    // audited by the token that ran it, as a success and as a failure, without the SQL text
    const audited = (await h.config.audit.list({ limit: 50 })).entries.filter((entry) => entry.action.type === "d1.execute");
    assert.deepEqual(audited.map((entry) => [entry.actor.type, entry.action.result]).sort(), [["token", false], ["token", true], ["token", true]]);
    assert.doesNotMatch(JSON.stringify(audited.filter((entry) => entry.action.result)), /noted in d1|INSERT/);
    writeFileSync(join(project, "seed.sql"), "INSERT INTO notes VALUES ('x');");
    const file = await wrangler(["d1", "execute", "mailer-db", "--remote", "--yes", "--file", "seed.sql"]);
    assert.notEqual(file.code, 0);
    assert.match(file.out, /not supported by mailroute/);
  });

  it("`wrangler secret delete` removes the secret", async () => {
    const deleted = await wrangler(["secret", "delete", "TAG"]);
    assert.equal(deleted.code, 0, deleted.out);
    assert.deepEqual((await h.config.workers.get("mailer")).bindings.secrets, []);
  });

  it("reads what the dashboard shows through the cloudflare SDK: scripts with version, time and bindings, settings, secrets, console lines", async () => {
    const cf = new Cloudflare({ apiToken: token, baseURL: `http://127.0.0.1:${h.mailroute.http.port}/client/v4`, maxRetries: 0 });
    const worker = await h.config.workers.get("mailer");
    const scripts: Record<string, unknown>[] = [];
    for await (const script of cf.workers.scripts.list({ account_id: "default" })) scripts.push(script as unknown as Record<string, unknown>);
    assert.equal(scripts.length, 1);
    assert.equal(scripts[0]!["id"], "mailer");
    assert.equal(scripts[0]!["etag"], worker.version);
    assert.equal(scripts[0]!["modified_on"], worker.modifiedAt);
    const settings = await cf.workers.scripts.scriptAndVersionSettings.get("mailer", { account_id: "default" });
    const scriptSettings = await cf.workers.scripts.settings.get("mailer", { account_id: "default" });
    assert.equal(scriptSettings.logpush, false);
    const bindings = (settings as unknown as { bindings: { name: string; type: string }[] }).bindings.map((b) => `${b.type}:${b.name}`).sort();
    assert.deepEqual(bindings, ["d1:DB", "kv_namespace:MAP", "plain_text:DESTINATION", "plain_text:EXTRA"]);
    assert.doesNotMatch(JSON.stringify(settings), /owner@dest\.test/, "var values stay out of the listing");
    const secrets: { name?: string }[] = [];
    for await (const secret of cf.workers.scripts.secrets.list("mailer", { account_id: "default" })) secrets.push(secret);
    assert.deepEqual(secrets, []);
    const logs = (await cf.get("/accounts/default/workers/scripts/mailer/logs", { query: { limit: 50 } })) as { result: { level: string; message: string }[] };
    assert.ok(logs.result.some((line) => line.message === "handled with note noted in d1"), JSON.stringify(logs.result));
    const namespaces: { id: string }[] = [];
    for await (const namespace of cf.kv.namespaces.list({ account_id: "default" })) namespaces.push(namespace);
    assert.deepEqual(namespaces.map((namespace) => namespace.id), [], "the only key was deleted: no namespace holds keys");
  });

  it("another account's token neither sees nor changes the worker, and learns nothing", async () => {
    const version = (await h.config.workers.get("mailer")).version;
    const seen = await api("/accounts/default/workers/services/mailer", { token: otherToken });
    assert.equal(seen.status, 404);
    assert.equal(seen.body.errors[0]!.code, 7003, "the account is not found: not even the worker's absence is told");
    const own = await api("/accounts/other/workers/services/mailer", { token: otherToken });
    assert.equal(own.status, 404);
    assert.equal(own.body.errors[0]!.code, 10007, "its own account has no worker of that name");
    const secret = await api("/accounts/default/workers/scripts/mailer/secrets", { token: otherToken, method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "X", text: "y", type: "secret_text" }) });
    assert.equal(secret.status, 404);
    const kv = await api("/accounts/default/storage/kv/namespaces/mailer-routes/values/greeting", { token: otherToken, method: "PUT", body: "overwritten" });
    assert.equal(kv.status, 404);
    const redeploy = await wrangler(["deploy"], { token: otherToken, account: "default" });
    assert.notEqual(redeploy.code, 0, redeploy.out);
    const mine = await wrangler(["secret", "put", "TAG"], { token: otherToken, account: "default", stdin: "evil" });
    assert.notEqual(mine.code, 0, mine.out);
    assert.equal((await h.config.workers.get("mailer")).version, version);
    assert.deepEqual((await h.config.workers.get("mailer")).bindings.secrets, []);
  });

  it("refuses a bundle that cannot load, with a catalogue error naming why, and changes nothing", async () => {
    const before = (await h.config.workers.get("mailer")).version;
    const form = new FormData();
    form.set("metadata", JSON.stringify({ main_module: "index.js", compatibility_date: "2024-09-23", bindings: [] }));
    form.set("index.js", new Blob(['import "./missing.js";\nexport default { async email() {} };'], { type: "application/javascript+module" }), "index.js");
    const refused = await api("/accounts/default/workers/scripts/mailer", { method: "PUT", body: form });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.errors[0]!.code, 10021);
    assert.match(refused.body.errors[0]!.message, /does not load in the Workers runtime: .*missing\.js/);
    const noHandler = new FormData();
    noHandler.set("metadata", JSON.stringify({ main_module: "index.js", compatibility_date: "2024-09-23", bindings: [] }));
    noHandler.set("index.js", new Blob(["export default { async fetch() { return new Response('hi'); } };"], { type: "application/javascript+module" }), "index.js");
    const noEmail = await api("/accounts/default/workers/scripts/mailer", { method: "PUT", body: noHandler });
    assert.equal(noEmail.status, 400);
    assert.match(noEmail.body.errors[0]!.message, /has no email\(\) handler: its default export has fetch\(\)/);
    const unknownBinding = new FormData();
    unknownBinding.set("metadata", JSON.stringify({ main_module: "index.js", compatibility_date: "2024-09-23", bindings: [{ name: "BROWSER", type: "browser" }] }));
    unknownBinding.set("index.js", new Blob(["export default { async email() {} };"], { type: "application/javascript+module" }), "index.js");
    const missing = await api("/accounts/default/workers/scripts/mailer", { method: "PUT", body: unknownBinding });
    assert.equal(missing.status, 400);
    assert.match(missing.body.errors[0]!.message, /cannot provide: BROWSER \(browser\)/);
    assert.equal((await h.config.workers.get("mailer")).version, before);
  });

  it("holds at most two uploads at once, before reading their bodies: the third gets 503 with Retry-After", async () => {
    const open = [0, 1].map(() => {
      const held = request({ host: "127.0.0.1", port: h.mailroute.http.port, method: "PUT", path: "/client/v4/accounts/default/workers/scripts/held", headers: { authorization: `Bearer ${token}`, "content-type": "multipart/form-data; boundary=x", "content-length": 1000 } });
      const answered = new Promise<number>((resolve) => {
        held.on("response", (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        });
        held.on("error", () => resolve(0));
      });
      held.write("--x\r\n"); // the headers and a first byte: the server has taken its slot
      return { held, answered };
    });
    // until the server has the two held requests' headers, a third is read (400) and lets go at once
    let third: Response | undefined;
    for (let attempt = 0; attempt < 100 && third?.status !== 503; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      third = await fetch(`http://127.0.0.1:${h.mailroute.http.port}/client/v4/accounts/default/workers/scripts/held`, { method: "PUT", headers: { authorization: `Bearer ${token}`, "content-type": "multipart/form-data; boundary=x" }, body: "--x--\r\n" });
      await third.arrayBuffer();
    }
    assert.equal(third!.status, 503);
    assert.equal(third!.headers.get("retry-after"), "5");
    for (const { held } of open) held.destroy();
    await Promise.all(open.map(({ answered }) => answered));
    // the slots are free again: the next upload is read (and refused for what it is)
    const next = await api("/accounts/default/workers/scripts/held", { method: "PUT", headers: { "content-type": "multipart/form-data; boundary=x" }, body: "--x--\r\n" });
    assert.equal(next.status, 400, JSON.stringify(next.body));
    assert.equal(next.body.errors[0]!.code, 10021);
  });

  it("`wrangler delete` removes the worker, and the rule naming it is marked inactive", async () => {
    const deleted = await wrangler(["delete"]);
    assert.equal(deleted.code, 0, deleted.out);
    assert.match(deleted.out, /Successfully deleted mailer/);
    assert.deepEqual(await h.config.workers.list(), []);
    const [rule] = await h.config.rules.all();
    assert.match(rule!.inactiveReasons.join("; "), /mailer/);
  });
});
