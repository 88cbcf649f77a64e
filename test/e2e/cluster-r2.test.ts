/**
 * R2 in cluster mode (issue 9): two real nodes (startMailroute, as `mailroute start` runs them)
 * on one fresh PostgreSQL database. A worker handling mail on node A writes objects and starts a
 * multipart upload; the same worker on node B, through its fetch() handler, reads them (a ranged
 * get, a suffix, head, list) and completes the upload with a part of its own. Another account's
 * worker, bound to a bucket of the same name, sees none of it, and what it writes stays its own.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { silentLogger } from "../../src/analytics/structured-log.ts";
import { startMailroute, type RunningMailroute } from "../../src/cli/start-service.ts";
import { loadSettings } from "../../src/config/settings.ts";
import { createR2Buckets } from "../../src/core/r2/r2-buckets.ts";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import { createServices } from "../../src/core/services.ts";
import type { WorkerDeployment } from "../../src/core/workers/worker-definition.ts";
import { openStore, type Store } from "../../src/store/open-store.ts";
import { NO_PLATFORM_BINDINGS } from "../../src/workers/platform-bindings.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";
import { createTestDatabase, type TestDatabase } from "../support/postgres-database.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

const ARCHIVER = `export default {
  async email(message, env) {
    await env.ARCHIVE.put("mail/first.eml", message.raw, { httpMetadata: { contentType: "message/rfc822" }, customMetadata: { from: message.from } });
    const upload = await env.ARCHIVE.createMultipartUpload("big.bin", { customMetadata: { started: "on the node that took the mail" } });
    const part = await upload.uploadPart(1, new Uint8Array(5 * 1024 * 1024).fill(120));
    await env.ARCHIVE.put("pending.json", JSON.stringify({ uploadId: upload.uploadId, part }));
  },
  async fetch(request, env) {
    const path = new URL(request.url).pathname;
    if (path === "/read") {
      const ranged = await env.ARCHIVE.get("mail/first.eml", { range: { offset: 0, length: 5 } });
      const suffix = await env.ARCHIVE.get("mail/first.eml", { range: { suffix: 4 } });
      const head = await env.ARCHIVE.head("mail/first.eml");
      const listed = await env.ARCHIVE.list({ include: ["customMetadata"] });
      return Response.json({
        ranged: ranged && { text: await ranged.text(), range: ranged.range },
        suffix: suffix && await suffix.text(),
        head: head && { size: head.size, etag: head.etag, type: head.httpMetadata.contentType, from: head.customMetadata.from },
        keys: listed.objects.map((object) => object.key),
      });
    }
    if (path === "/complete") {
      const pending = await (await env.ARCHIVE.get("pending.json")).json();
      const upload = env.ARCHIVE.resumeMultipartUpload("big.bin", pending.uploadId);
      const second = await upload.uploadPart(2, "tail");
      const done = await upload.complete([pending.part, second]);
      const tail = await (await env.ARCHIVE.get("big.bin", { range: { suffix: 6 } })).text();
      return Response.json({ etag: done.etag, size: done.size, started: done.customMetadata.started, tail });
    }
    return new Response("not found", { status: 404 });
  },
};`;

// another account's worker, bound to a bucket of the same name: it reports what it can see
const PEEKER = `export default {
  async email(message, env) {
    const listed = await env.ARCHIVE.list();
    const found = await env.ARCHIVE.get("mail/first.eml");
    await env.ARCHIVE.put("mine.txt", "other account's object");
    message.setReject("peeker saw " + listed.objects.length + " objects, mail/first.eml " + (found === null ? "absent" : "present"));
  },
};`;

function deployment(name: string, bundle: string): Omit<WorkerDeployment, "account"> {
  return { name, bundle, compatibilityDate: "2025-06-01", compatibilityFlags: [], vars: {}, kv: [], sendEmail: [], platform: { ...NO_PLATFORM_BINDINGS, r2: [{ binding: "ARCHIVE", bucket: "archive" }] } };
}

let database: TestDatabase;
let dns: TestDnsServer;
let configStore: Store;
const nodes: RunningMailroute[] = [];
const dataDirs: string[] = [];
const clusterKey = randomBytes(32).toString("base64");

function startNode(name: string): Promise<RunningMailroute> {
  const dir = mkdtempSync(join(tmpdir(), `mailroute-r2-${name}-`));
  dataDirs.push(dir);
  const settings = loadSettings(
    { "data-dir": dir, database: database.url, "node-id": name, "smtp-port": "0", "http-port": "0", "admin-token": "test-admin-token", hostname: "mx.mailroute.test", "dns-servers": dns.address },
    { MAILROUTE_CLUSTER_KEY: clusterKey },
  );
  return startMailroute(settings, { logger: silentLogger, closeTimeoutMs: 500 });
}

async function send(node: RunningMailroute, to: string): Promise<{ code: number; line: string }> {
  const { client } = await SmtpTestClient.connect(node.smtp.port);
  try {
    const envelope = await client.envelope("sender@origin.test", [to]);
    assert.equal(envelope.rcpts[0]?.code, 250, envelope.rcpts[0]?.line);
    return await client.data(testMessage({ from: "sender@origin.test", to }));
  } finally {
    await client.quit().catch(() => undefined);
  }
}

async function workerFetch(node: RunningMailroute, path: string): Promise<any> {
  const response = await fetch(`http://127.0.0.1:${node.http.port}/workers/archiver${path}`);
  assert.equal(response.status, 200, await response.clone().text());
  return response.json();
}

/** Polls until every node's routing table has `count` rules; bounded. */
async function rulesSeen(count: number): Promise<void> {
  for (let round = 0; round < 200; round++) {
    if (nodes.every((node) => node.routing.table.rules.size === count)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`the nodes did not see ${count} rules`);
}

describe("R2 shared by two nodes on one PostgreSQL database", () => {
  before(async () => {
    database = await createTestDatabase();
    dns = await startDnsServer();
    nodes.push(...(await Promise.all([startNode("node-a"), startNode("node-b")])));
    configStore = await openStore({ dataDir: "/nonexistent/unused-with-postgres", databaseUrl: database.url });
    const services = createServices(configStore);
    const own = services.forAccount({ account: "default", actor: CLI_OPERATOR });
    await own.zones.create("archive.example");
    await own.workers.deploy(deployment("archiver", ARCHIVER));
    await own.rules.create({ matchers: [{ type: "literal", field: "to", value: "in@archive.example" }], actions: [{ type: "worker", value: ["archiver"] }] });
    await services.accounts(CLI_OPERATOR).create({ id: "acct-other", name: "Other" });
    const other = services.forAccount({ account: "acct-other", actor: CLI_OPERATOR });
    await other.zones.create("other.example");
    await other.workers.deploy(deployment("peeker", PEEKER));
    await other.rules.create({ matchers: [{ type: "literal", field: "to", value: "peek@other.example" }], actions: [{ type: "worker", value: ["peeker"] }] });
    await rulesSeen(2);
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.close()));
    await configStore?.close();
    await dns?.stop();
    await database?.drop();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  });

  it("reads on node B, ranged, what the worker wrote on node A while handling mail", async () => {
    const [a, b] = nodes;
    const reply = await send(a!, "in@archive.example");
    assert.equal(reply.code, 250, reply.line);
    const seen = await workerFetch(b!, "/read");
    // the bytes themselves, read from the store by a third party
    const stored = await createR2Buckets(configStore, "default").get("archive", "mail/first.eml");
    assert.ok(stored, "the object is in the shared store");
    const chunks: Buffer[] = [];
    for await (const chunk of stored.read({ offset: 0, length: stored.object.size })) chunks.push(Buffer.from(chunk));
    const raw = Buffer.concat(chunks);
    assert.deepEqual(seen, {
      ranged: { text: raw.subarray(0, 5).toString("utf8"), range: { offset: 0, length: 5 } },
      suffix: raw.subarray(raw.length - 4).toString("utf8"),
      head: { size: raw.length, etag: createHash("md5").update(raw).digest("hex"), type: "message/rfc822", from: "sender@origin.test" },
      keys: ["mail/first.eml", "pending.json"],
    });
    assert.match(raw.toString("utf8"), /^[\s\S]*To: in@archive\.example/);
  });

  it("completes on node B a multipart upload node A began, into one object both read", async () => {
    const [a, b] = nodes;
    const done = await workerFetch(b!, "/complete");
    assert.equal(done.size, 5 * 1024 * 1024 + 4);
    assert.match(done.etag, /^[0-9a-f]{32}-2$/);
    assert.deepEqual({ started: done.started, tail: done.tail }, { started: "on the node that took the mail", tail: "xxtail" });
    const fromA = await workerFetch(a!, "/read");
    assert.deepEqual(fromA.keys, ["big.bin", "mail/first.eml", "pending.json"]);
  });

  it("keeps another account's bucket of the same name apart, both ways", async () => {
    const [a, b] = nodes;
    const reply = await send(b!, "peek@other.example");
    assert.equal(reply.code, 550, reply.line);
    assert.match(reply.line, /peeker saw 0 objects, mail\/first\.eml absent/);
    const own = await workerFetch(a!, "/read");
    assert.deepEqual(own.keys, ["big.bin", "mail/first.eml", "pending.json"], "the other account's object is not in this bucket");
    const theirs = await createR2Buckets(configStore, "acct-other").list("archive");
    assert.deepEqual(theirs.objects.map((object) => object.key), ["mine.txt"]);
  });
});
