import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import { after, describe, it } from "node:test";
import { workerFetchRoutes } from "../../src/api/worker-fetch-routes.ts";
import { readDataPoints } from "../../src/core/workers/worker-analytics.ts";
import { nonEmailHandlers, storePlatformHandlers } from "../../src/workers/handler-hosts.ts";
import { DEFAULT_TRIGGERS, NO_PLATFORM_BINDINGS, type PlatformBindings } from "../../src/workers/platform-bindings.ts";
import { QueueDispatcher } from "../../src/workers/queue-dispatcher.ts";
import { openSecretBox } from "../../src/workers/secret-box.ts";
import { WorkerRuntime } from "../../src/workers/worker-runtime.ts";
import { createWorkersAiRunner } from "../../src/workers/workers-ai-client.ts";
import { createServices } from "../../src/core/services.ts";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import type { InvocationResult, WorkerDefinition } from "../../src/workers/worker-types.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";
import { fakeHost, MapKvStore, SAMPLE_MESSAGE, workerDefinition } from "./fake-host.ts";

const runtime = new WorkerRuntime();
after(() => runtime.dispose());

const ENVELOPE = { from: "alice@sender.example", to: "bob@example.com", raw: SAMPLE_MESSAGE };

/** fetch() will not send another Host header; a route is matched on it, as behind a proxy. */
function getWithHost(base: string, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${base}${path}`, { headers: { host } }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
    });
    request.on("error", reject);
    request.end();
  });
}

function platform(fields: Partial<PlatformBindings>): PlatformBindings {
  return { ...NO_PLATFORM_BINDINGS, ...fields };
}

function seen(result: InvocationResult): unknown {
  const line = result.logs.find((log) => log.message.startsWith("seen "));
  assert.ok(line, `no observation in ${JSON.stringify(result)}`);
  return JSON.parse(line.message.slice(5));
}

describe("D1 and R2 bindings (miniflare's own, persisted per account)", () => {
  it("runs D1 prepare/bind/run/all/first/raw/batch/exec and withSession, and the data survives a new runtime process", async () => {
    const storageDir = await mkdtemp(join(tmpdir(), "mailroute-d1-"));
    try {
      const definition = workerDefinition({
        account: "d1-account",
        name: "d1-user",
        storageDir,
        platform: platform({ d1: [{ binding: "DB", databaseId: "db-0001", databaseName: "mail" }] }),
        bundle: `export default { async email(message, env) {
          await env.DB.exec("CREATE TABLE IF NOT EXISTS seen (address TEXT PRIMARY KEY, n INTEGER)");
          await env.DB.prepare("INSERT INTO seen VALUES (?1, 1) ON CONFLICT(address) DO UPDATE SET n = n + 1").bind(message.from).run();
          const [, count] = await env.DB.batch([env.DB.prepare("SELECT 1"), env.DB.prepare("SELECT n FROM seen WHERE address = ?").bind(message.from)]);
          const first = await env.DB.prepare("SELECT n FROM seen").first("n");
          const raw = await env.DB.prepare("SELECT address, n FROM seen").raw();
          const session = env.DB.withSession("first-primary");
          const all = await session.prepare("SELECT count(*) AS c FROM seen").all();
          console.log("seen " + JSON.stringify({ batch: count.results, first, raw, all: all.results }));
        } };`,
      });
      const first = await runtime.invoke(definition, ENVELOPE, fakeHost());
      assert.deepEqual(seen(first), { batch: [{ n: 1 }], first: 1, raw: [["alice@sender.example", 1]], all: [{ c: 1 }] });
      // a new process (another runtime) reads the same files
      const other = new WorkerRuntime();
      try {
        const second = await other.invoke(definition, ENVELOPE, fakeHost());
        assert.deepEqual((seen(second) as { first: number }).first, 2);
      } finally {
        await other.dispose();
      }
    } finally {
      await rm(storageDir, { recursive: true, force: true });
    }
  });

  it("stores R2 objects on disk with metadata, ranges, listing, multipart uploads and deletes", async () => {
    const storageDir = await mkdtemp(join(tmpdir(), "mailroute-r2-"));
    try {
      const definition = workerDefinition({
        account: "r2-account",
        name: "r2-user",
        storageDir,
        platform: platform({ r2: [{ binding: "BUCKET", bucket: "attachments" }] }),
        bundle: `export default { async email(message, env) {
          await env.BUCKET.put("mail/1.eml", message.raw, { httpMetadata: { contentType: "message/rfc822" }, customMetadata: { from: message.from } });
          const head = await env.BUCKET.head("mail/1.eml");
          const range = await (await env.BUCKET.get("mail/1.eml", { range: { offset: 0, length: 5 } })).text();
          const upload = await env.BUCKET.createMultipartUpload("big.bin");
          const part1 = await upload.uploadPart(1, "a".repeat(5 * 1024 * 1024));
          const part2 = await upload.uploadPart(2, "tail");
          await upload.complete([part1, part2]);
          const big = await env.BUCKET.head("big.bin");
          await env.BUCKET.put("mail/2.eml", "x");
          await env.BUCKET.delete("mail/2.eml");
          const listed = await env.BUCKET.list({ prefix: "mail/" });
          console.log("seen " + JSON.stringify({ type: head.httpMetadata.contentType, custom: head.customMetadata, range, big: big.size, keys: listed.objects.map((o) => o.key) }));
        } };`,
      });
      const result = await runtime.invoke(definition, ENVELOPE, fakeHost());
      assert.deepEqual(seen(result), { type: "message/rfc822", custom: { from: "alice@sender.example" }, range: "From:", big: 5 * 1024 * 1024 + 4, keys: ["mail/1.eml"] });
    } finally {
      await rm(storageDir, { recursive: true, force: true });
    }
  });

  it("turns a declared binding mailroute cannot provide into a loud failure, never a silent undefined", async () => {
    const result = await runtime.invoke(
      workerDefinition({ account: "missing", name: "uses-do", platform: platform({ missing: [{ binding: "COUNTER", type: "durable_object_namespace" }] }), bundle: `export default { async email(message, env) { await env.COUNTER.get("id"); } };` }),
      ENVELOPE,
      fakeHost(),
    );
    assert.equal(result.outcome, "error");
    assert.equal(result.error, "binding COUNTER (durable_object_namespace) is not available on this mailroute server");
  });

  it("refuses Workers AI clearly when no endpoint is configured", async () => {
    const result = await runtime.invoke(
      workerDefinition({ account: "ai", name: "uses-ai", platform: platform({ ai: [{ binding: "AI" }] }), bundle: `export default { async email(message, env) { await env.AI.run("@cf/meta/llama", { prompt: "hi" }); } };` }),
      ENVELOPE,
      fakeHost(),
    );
    assert.equal(result.outcome, "error");
    assert.match(result.error ?? "", /Workers AI is not available on this mailroute server: no model runs here/);
  });
});

describe("Workers AI through the operator's endpoint", () => {
  it("sends env.AI.run(model, inputs) to <url>/run/<model> with the token, and hands back the result; an endpoint error reaches the worker by name", async () => {
    const seen: { path: string; auth: string | undefined; body: unknown }[] = [];
    const endpoint = Fastify();
    endpoint.post("/ai/run/*", async (request, reply) => {
      seen.push({ path: request.url, auth: request.headers.authorization, body: request.body });
      if (request.url.endsWith("/broken")) return reply.code(400).send({ success: false, errors: [{ code: 5007, message: "No such model" }], result: null });
      return { success: true, errors: [], result: { response: `echo: ${(request.body as { prompt: string }).prompt}` } };
    });
    await endpoint.listen({ port: 0, host: "127.0.0.1" });
    try {
      const url = `http://127.0.0.1:${(endpoint.server.address() as { port: number }).port}/ai`;
      const runAi = createWorkersAiRunner({ url, token: "ai-token-1" });
      const worker = (model: string) =>
        workerDefinition({
          account: "ai",
          name: "uses-ai",
          platform: platform({ ai: [{ binding: "AI" }] }),
          bundle: `export default { async email(message, env) { const answer = await env.AI.run(${JSON.stringify(model)}, { prompt: "hi" }); console.log(answer.response); } };`,
        });
      const ok = await runtime.invoke(worker("@cf/meta/llama-3-8b-instruct"), ENVELOPE, { ...fakeHost(), platform: { writeDataPoint: async () => undefined, sendToQueue: async () => undefined, runAi } });
      assert.equal(ok.outcome, "dropped", ok.error);
      assert.deepEqual(ok.logs.map((line) => line.message), ["echo: hi"]);
      assert.deepEqual(seen[0], { path: "/ai/run/%40cf/meta/llama-3-8b-instruct", auth: "Bearer ai-token-1", body: { prompt: "hi" } });
      const failed = await runtime.invoke(worker("@cf/broken"), ENVELOPE, { ...fakeHost(), platform: { writeDataPoint: async () => undefined, sendToQueue: async () => undefined, runAi } });
      assert.equal(failed.outcome, "error");
      assert.match(failed.error ?? "", /Workers AI: @cf\/broken: No such model/);
      assert.doesNotMatch(JSON.stringify(failed), /ai-token-1/, "the token never reaches the worker or its log");
    } finally {
      await endpoint.close();
    }
  });
});

forEachDatabase((target) => {
  it("stores Analytics Engine data points in the store, readable per dataset", async () => {
    const { db } = await target.open();
    const host = { ...fakeHost(), platform: storePlatformHandlers(db, "ae-account") };
    const result = await runtime.invoke(
      workerDefinition({
        account: "ae-account",
        name: "ae-writer",
        platform: platform({ analytics: [{ binding: "STATS", dataset: "mail_stats" }] }),
        bundle: `export default { async email(message, env) { env.STATS.writeDataPoint({ indexes: [message.to], blobs: [message.from, null], doubles: [message.rawSize, 1] }); } };`,
      }),
      ENVELOPE,
      host,
    );
    assert.equal(result.error, undefined);
    const points = await readDataPoints(db, "ae-account", "mail_stats");
    assert.equal(points.length, 1);
    assert.deepEqual({ ...points[0], timestamp: undefined }, { timestamp: undefined, index1: "bob@example.com", blobs: ["alice@sender.example", null], doubles: [SAMPLE_MESSAGE.length, 1] });
    assert.deepEqual(await readDataPoints(db, "other-account", "mail_stats"), []);
  });

  it("delivers queue messages from a producer worker to the consumer worker's queue(), retrying and then dead-lettering", async () => {
    const store = await target.open();
    const { db } = store;
    const services = createServices(store, { secretBox: openSecretBox(await mkdtemp(join(tmpdir(), "mailroute-queue-keys-"))) });
    const workers = services.runtimeWorkers;
    const account = "default";
    await services.forAccount({ account, actor: CLI_OPERATOR }).workers.deploy({
      name: "consumer",
      bundle: `export default { async email() {}, async queue(batch, env) {
        for (const message of batch.messages) {
          console.log("got " + JSON.stringify({ queue: batch.queue, body: message.body, attempts: message.attempts }));
          if (message.body.fail) message.retry(); else message.ack();
        }
      } };`,
      compatibilityDate: "2025-06-01",
      compatibilityFlags: [],
      vars: {},
      kv: [],
      sendEmail: [],
      triggers: { ...DEFAULT_TRIGGERS, queueConsumers: [{ queue: "inbound", maxBatchSize: 10, maxBatchTimeoutSeconds: 1, maxRetries: 1, deadLetterQueue: "inbound-dlq", retryDelaySeconds: 0 }] },
    });
    const producer = workerDefinition({
      account,
      name: "producer",
      platform: platform({ queues: [{ binding: "JOBS", queue: "inbound" }] }),
      bundle: `export default { async email(message, env) { await env.JOBS.send({ from: message.from }); await env.JOBS.sendBatch([{ body: { fail: true } }]); } };`,
    });
    const produced = await runtime.invoke(producer, ENVELOPE, { ...fakeHost(), platform: storePlatformHandlers(db, account) });
    assert.equal(produced.error, undefined);

    const logs: string[] = [];
    const dispatcher = new QueueDispatcher({
      db,
      workers,
      invoke: (definition, invocation, handlers) => runtime.invoke(definition, invocation, handlers),
      handlers: (owner) => nonEmailHandlers(new MapKvStore(), storePlatformHandlers(db, owner)),
      recordLogs: async (_account, _worker, lines) => void logs.push(...lines.map((line) => line.message)),
      onEvent: () => undefined,
    });
    assert.equal(await dispatcher.tick(), 2);
    assert.deepEqual(logs.sort(), ['got {"queue":"inbound","body":{"fail":true},"attempts":1}', 'got {"queue":"inbound","body":{"from":"alice@sender.example"},"attempts":1}']);
    // the retried one runs again, is retried once more, and past max_retries moves to the dead-letter queue
    assert.equal(await dispatcher.tick(), 1);
    const left = await db.selectFrom("worker_queue_messages").select(["queue", "attempts"]).execute();
    assert.deepEqual(left, [{ queue: "inbound-dlq", attempts: 0 }]);
    assert.equal(await dispatcher.tick(), 0, "no consumer for the dead-letter queue: the message waits there");
  });
});

describe("a worker's fetch() handler over HTTP", () => {
  it("serves /workers/<name>/… and the worker's routes through the runtime, hiding exception text", async () => {
    const fetchWorker = workerDefinition({
      account: "default",
      name: "bot",
      triggers: { ...DEFAULT_TRIGGERS, routes: [{ pattern: "hooks.example.com/telegram*", customDomain: false }] },
      bundle: `export default {
        async email() {},
        async fetch(request, env) {
          const url = new URL(request.url);
          if (url.pathname === "/boom") throw new Error("secret sk_live_123 leaked");
          await env.MAP.put("last", url.pathname);
          return new Response(JSON.stringify({ path: url.pathname, query: url.search, method: request.method, body: await request.text(), host: url.host }), { status: 202, headers: { "content-type": "application/json", "x-worker": "bot" } });
        },
      };`,
      kv: [{ binding: "MAP", namespace: "ns" }],
    });
    // another account's worker: its own zone's host is served; a route naming the default
    // account's host is ignored (it would capture that account's webhooks)
    const familyWorker = workerDefinition({
      account: "family",
      name: "greeter",
      triggers: { ...DEFAULT_TRIGGERS, routes: [{ pattern: "hooks.family.example/*", customDomain: false }, { pattern: "hooks.example.com/*", customDomain: false }] },
      bundle: `export default { async email() {}, async fetch(request) { return new Response("family " + new URL(request.url).pathname); } };`,
    });
    const kv = new MapKvStore();
    const app = Fastify();
    await app.register(
      workerFetchRoutes({
        account: "default",
        zoneAccounts: () => new Map([["example.com", "default"], ["family.example", "family"]]),
        routes: async (account) => (account === "family" ? [{ name: "greeter", triggers: familyWorker.triggers! }] : [{ name: "bot", triggers: fetchWorker.triggers! }]),
        load: async (account, name) => (account === "default" && name === "bot" ? fetchWorker : account === "family" && name === "greeter" ? familyWorker : null),
        invoke: (definition, invocation, handlers) => runtime.invoke(definition, invocation, handlers),
        handlers: () => nonEmailHandlers(kv, storePlatformHandlers(null as never, "default")),
        recordLogs: async () => undefined,
        maxBodyBytes: 1024,
      }),
    );
    app.get("/healthz", async () => ({ ok: true }));
    await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
      const posted = await fetch(`${base}/workers/bot/hook?x=1`, { method: "POST", body: "ping" });
      assert.equal(posted.status, 202);
      assert.equal(posted.headers.get("x-worker"), "bot");
      assert.deepEqual(await posted.json(), { path: "/hook", query: "?x=1", method: "POST", body: "ping", host: `127.0.0.1:${new URL(base).port}` });
      assert.equal(new TextDecoder().decode((await kv.get("ns", "last"))!.value), "/hook");

      const routed = await getWithHost(base, "/telegram/update", "hooks.example.com");
      assert.equal((JSON.parse(routed.body) as { path: string }).path, "/telegram/update");
      assert.equal((await getWithHost(base, "/other", "hooks.example.com")).status, 404, "outside the route pattern, and not the other account's either");
      const family = await getWithHost(base, "/hello", "hooks.family.example");
      assert.deepEqual([family.status, family.body], [200, "family /hello"], "another account's worker on its own zone");
      assert.equal((await fetch(`${base}/workers/greeter/x`)).status, 404, "/workers/<name> is the built-in account's");
      assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { ok: true }, "other routes untouched");

      const boom = await fetch(`${base}/workers/bot/boom`);
      assert.equal(boom.status, 500);
      assert.equal(await boom.text(), "Worker threw exception\n");
      assert.equal((await fetch(`${base}/workers/nobody/x`)).status, 404);
      assert.equal((await fetch(`${base}/workers/bot/hook`, { method: "POST", body: "x".repeat(2048) })).status, 413);
    } finally {
      await app.close();
    }
  });
});
