import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { WorkerRuntime } from "../../src/workers/worker-runtime.ts";
import type { InvocationResult, WorkerDefinition } from "../../src/workers/worker-types.ts";
import { fakeHost, MapKvStore, rawMessage, SAMPLE_MESSAGE, workerDefinition, type FakeHost } from "./fake-host.ts";

const runtime = new WorkerRuntime();
after(() => runtime.dispose());

const ENVELOPE = { from: "alice@sender.example", to: "bob@example.com" };

function run(fields: Partial<WorkerDefinition> & Pick<WorkerDefinition, "name" | "bundle">, host: FakeHost = fakeHost(), raw = SAMPLE_MESSAGE): Promise<InvocationResult> {
  return runtime.invoke(workerDefinition({ account: "bindings", ...fields }), { ...ENVELOPE, raw }, host);
}

function seen(result: InvocationResult): unknown {
  const line = result.logs.find((log) => log.message.startsWith("seen "));
  assert.ok(line, `no observation in ${JSON.stringify(result)}`);
  return JSON.parse(line.message.slice(5));
}

/** A worker body that reports `expression` (awaited), or the error it threw as {error, name}. */
function report(body: string): string {
  return `import { EmailMessage } from "cloudflare:email";
    export default { async email(message, env, ctx) {
      const attempt = async (f) => { try { return await f(); } catch (e) { return { error: e.message, name: e.name }; } };
      ${body}
    } };`;
}

const composed = (from: string, to: string, extra: string[] = []) =>
  [`From: Bot <${from}>`, `To: ${to}`, "Subject: Automatic", "Message-ID: <composed-1@example.com>", ...extra, "", "Hi."].join("\r\n");

describe("Email Worker bindings", () => {
  it("gives env the vars (strings stay strings, JSON as given) and the secrets", async () => {
    const result = await run({
      name: "env-reader",
      vars: { NAME: "42", LIMIT: 42, FLAGS: { on: true, list: ["a"] } },
      secrets: { TOKEN: "s3cret" },
      bundle: `export default { email(message, env) { console.log("seen " + JSON.stringify({ name: env.NAME, type: typeof env.NAME, limit: env.LIMIT, flags: env.FLAGS, token: env.TOKEN })); } };`,
    });
    assert.deepEqual(seen(result), { name: "42", type: "string", limit: 42, flags: { on: true, list: ["a"] }, token: "s3cret" });
  });

  it("round-trips KV values in every read type, with metadata, expiration and listing", async () => {
    const kv = new MapKvStore();
    const host = fakeHost({ kv });
    const now = Math.floor(Date.now() / 1000);
    const result = await run(
      {
        name: "kv-user",
        kv: [{ binding: "MAP", namespace: "ns-map" }],
        bundle: report(`
          await env.MAP.put("user:alice", JSON.stringify({ to: "a@dest.example" }), { metadata: { owner: "ops" }, expirationTtl: 3600 });
          await env.MAP.put("user:bob", new TextEncoder().encode("bob-bytes"), { expiration: ${now + 7200} });
          await env.MAP.put("other", "x");
          const stream = await env.MAP.get("user:bob", "stream");
          const first = await env.MAP.list({ prefix: "user:", limit: 1 });
          const second = await env.MAP.list({ prefix: "user:", cursor: first.cursor });
          const bulk = await env.MAP.get(["user:alice", "missing"], "json");
          await env.MAP.delete("other");
          console.log("seen " + JSON.stringify({
            text: await env.MAP.get("user:alice"),
            json: await env.MAP.get("user:alice", { type: "json" }),
            bytes: new TextDecoder().decode(await env.MAP.get("user:bob", "arrayBuffer")),
            stream: await new Response(stream).text(),
            withMetadata: await env.MAP.getWithMetadata("user:alice", "json"),
            missing: await env.MAP.get("nope"),
            missingWithMetadata: await env.MAP.getWithMetadata("nope"),
            first, second, bulk: Object.fromEntries(bulk),
            deleted: await env.MAP.get("other"),
            shortTtl: await attempt(() => env.MAP.put("k", "v", { expirationTtl: 30 })),
            emptyKey: await attempt(() => env.MAP.get("")),
            longKey: await attempt(() => env.MAP.get("k".repeat(513))),
          }));`),
      },
      host,
    );
    const observed = seen(result) as Record<string, unknown>;
    assert.deepEqual(observed, {
      text: '{"to":"a@dest.example"}',
      json: { to: "a@dest.example" },
      bytes: "bob-bytes",
      stream: "bob-bytes",
      withMetadata: { value: { to: "a@dest.example" }, metadata: { owner: "ops" }, cacheStatus: null },
      missing: null,
      missingWithMetadata: { value: null, metadata: null, cacheStatus: null },
      first: observed.first,
      second: observed.second,
      bulk: { "user:alice": { to: "a@dest.example" }, missing: null },
      deleted: null,
      shortTtl: { error: "KV PUT failed: 400 Invalid expiration_ttl of 30. Expiration TTL must be at least 60.", name: "Error" },
      emptyKey: { error: "Key name cannot be empty.", name: "TypeError" },
      longKey: { error: "KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512.", name: "Error" },
    });
    const first = observed.first as { keys: { name: string; expiration?: number; metadata?: unknown }[]; list_complete: boolean; cursor?: string };
    assert.equal(first.keys.length, 1);
    assert.equal(first.keys[0]?.name, "user:alice");
    assert.deepEqual(first.keys[0]?.metadata, { owner: "ops" });
    assert.ok(Math.abs((first.keys[0]?.expiration ?? 0) - (now + 3600)) <= 5, "expirationTtl becomes an absolute expiration");
    assert.equal(first.list_complete, false);
    assert.deepEqual(observed.second, { keys: [{ name: "user:bob", expiration: now + 7200 }], list_complete: true, cacheStatus: null });
    assert.deepEqual([...(kv.namespaces.get("ns-map")?.keys() ?? [])].sort(), ["user:alice", "user:bob"]);
  });

  it("sends through a send_email binding with EmailMessage from cloudflare:email, statically and dynamically imported", async () => {
    const host = fakeHost();
    const result = await run(
      {
        name: "notifier",
        sendEmail: [{ name: "SEB" }],
        bundle: `import { EmailMessage as Static } from "cloudflare:email";
          export default { async email(message, env) {
            const { EmailMessage: Dynamic } = await import("cloudflare:email");
            const a = await env.SEB.send(new Static("bot@example.com", "ops@dest.example", ${JSON.stringify(composed("bot@example.com", "ops@dest.example"))}));
            const b = await env.SEB.send(new Dynamic("bot@example.com", "ops@dest.example", new TextEncoder().encode(${JSON.stringify(composed("bot@example.com", "ops@dest.example"))})));
            console.log("seen " + JSON.stringify({ a, b, same: Static === Dynamic }));
          } };`,
      },
      host,
    );
    assert.deepEqual(seen(result), { a: { messageId: "<sent-1@mailroute.test>" }, b: { messageId: "<sent-2@mailroute.test>" }, same: true });
    assert.equal(host.sent.length, 2);
    assert.deepEqual({ ...host.sent[0], raw: undefined }, { binding: "SEB", from: "bot@example.com", to: "ops@dest.example", raw: undefined });
    assert.equal(host.sent[0]?.raw, composed("bot@example.com", "ops@dest.example"));
    // sending is not delivering the incoming message: Cloudflare shows these as dropped
    assert.equal(result.outcome, "dropped");
  });

  it("holds send_email bindings to their destination_address and allowed lists", async () => {
    const host = fakeHost();
    const send = (binding: string, from: string, to: string | null) =>
      `await attempt(() => env.${binding}.send(new EmailMessage(${JSON.stringify(from)}, ${JSON.stringify(to)}, ${JSON.stringify(composed(from, to ?? "ops@dest.example"))})))`;
    const result = await run(
      {
        name: "restricted-sender",
        sendEmail: [
          { name: "TARGETED", destinationAddress: "ops@dest.example" },
          { name: "LISTED", allowedDestinationAddresses: ["a@dest.example"] },
          { name: "SENDERS", allowedSenderAddresses: ["bot@example.com"] },
        ],
        bundle: report(`console.log("seen " + JSON.stringify([
          ${send("TARGETED", "bot@example.com", null)},
          ${send("TARGETED", "bot@example.com", "other@dest.example")},
          ${send("LISTED", "bot@example.com", "a@dest.example")},
          ${send("LISTED", "bot@example.com", "b@dest.example")},
          ${send("SENDERS", "intruder@example.com", "a@dest.example")},
        ]));`),
      },
      host,
    );
    assert.deepEqual(seen(result), [
      { messageId: "<sent-1@mailroute.test>" },
      { error: "email to other@dest.example not allowed", name: "Error" },
      { messageId: "<sent-2@mailroute.test>" },
      { error: "email to b@dest.example not allowed", name: "Error" },
      { error: "email from intruder@example.com not allowed", name: "Error" },
    ]);
    assert.deepEqual(host.sent.map((sent) => [sent.binding, sent.to]), [["TARGETED", "ops@dest.example"], ["LISTED", "a@dest.example"]]);
  });

  it("replies once, to the sender, threaded on the incoming Message-ID, adding References", async () => {
    const host = fakeHost();
    const reply = (to: string, inReplyTo: string, from = "support@example.com") =>
      `new EmailMessage(${JSON.stringify(from)}, ${JSON.stringify(to)}, ${JSON.stringify(composed(from, to, [`In-Reply-To: ${inReplyTo}`]))})`;
    const result = await run(
      {
        name: "auto-responder",
        bundle: report(`console.log("seen " + JSON.stringify([
          await attempt(() => message.reply(${reply("someone@else.example", "<original-1@sender.example>")})),
          await attempt(() => message.reply(${reply("alice@sender.example", "<original-1@sender.example>", "support@elsewhere.example")})),
          await attempt(() => message.reply(${reply("alice@sender.example", "<unrelated@sender.example>")})),
          await attempt(() => message.reply(${reply("alice@sender.example", "<original-1@sender.example>")})),
          await attempt(() => message.reply(${reply("alice@sender.example", "<original-1@sender.example>")})),
        ]));`),
      },
      host,
    );
    assert.deepEqual(seen(result), [
      { error: "reply recipient does not match original sender", name: "Error" },
      { error: "reply sender domain does not match receiving domain", name: "Error" },
      { error: "In-Reply-To does not match original Message-ID", name: "Error" },
      { messageId: "<reply-1@mailroute.test>" },
      { error: "message already replied", name: "Error" },
    ]);
    assert.equal(result.outcome, "replied");
    assert.equal(host.replies.length, 1);
    assert.equal(host.replies[0]?.to, "alice@sender.example");
    assert.ok(host.replies[0]?.raw.startsWith("References: <original-1@sender.example>\r\nFrom: Bot <support@example.com>"));
  });

  it("refuses to reply to automatic mail", async () => {
    const raw = rawMessage({ From: "alice@sender.example", "Message-ID": "<auto@sender.example>", "Auto-Submitted": "auto-replied" });
    const result = await run(
      {
        name: "polite-responder",
        bundle: report(`console.log("seen " + JSON.stringify(await attempt(() => message.reply(new EmailMessage("support@example.com", message.from,
          ${JSON.stringify(composed("support@example.com", "alice@sender.example", ["In-Reply-To: <auto@sender.example>"]))})))));`),
      },
      fakeHost(),
      raw,
    );
    assert.deepEqual(seen(result), { error: "Original email is not replyable", name: "Error" });
  });
});
