import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { WorkerRuntime } from "../../src/workers/worker-runtime.ts";
import type { InvocationResult } from "../../src/workers/worker-types.ts";
import { fakeHost, rawMessage, SAMPLE_MESSAGE, workerDefinition, type FakeHost } from "./fake-host.ts";

const runtime = new WorkerRuntime();
after(() => runtime.dispose());

const ENVELOPE = { from: "alice+list@sender.example", to: "bob+shopping@example.com" };

function run(name: string, bundle: string, host: FakeHost = fakeHost(), raw = SAMPLE_MESSAGE, version = "v1"): Promise<InvocationResult> {
  return runtime.invoke(workerDefinition({ account: "message-api", name, bundle, version }), { ...ENVELOPE, raw }, host);
}

/** The worker's observations: it logs one JSON line starting with "seen ". */
function seen(result: InvocationResult): Record<string, unknown> {
  const line = result.logs.find((log) => log.message.startsWith("seen "));
  assert.ok(line, `no observation in ${JSON.stringify(result)}`);
  return JSON.parse(line.message.slice(5)) as Record<string, unknown>;
}

describe("Email Worker message API", () => {
  it("gives email() the envelope, case-insensitive headers, raw readable twice, rawSize, and `this`", async () => {
    const raw = rawMessage(
      [
        ["From", '"Alice" <alice@sender.example>'],
        ["To", "bob@example.com"],
        ["Subject", "Hello\r\n there"],
        ["Message-ID", "<m1@sender.example>"],
        ["X-Trace", "one"],
        ["X-Trace", "two"],
      ],
      "Body line.\r\n",
    );
    const result = await run(
      "observer",
      `export default {
        tag: "exported-object",
        async email(message, env, ctx) {
          const first = await new Response(message.raw).text();
          const second = await new Response(message.raw).arrayBuffer();
          console.log("seen " + JSON.stringify({
            from: message.from, to: message.to,
            subject: message.headers.get("SUBJECT"), messageId: message.headers.get("message-id"),
            trace: message.headers.get("x-trace"), isHeaders: message.headers instanceof Headers,
            rawIsStream: message.raw instanceof ReadableStream, first, secondLength: second.byteLength,
            rawSize: message.rawSize, self: this.tag, waitUntil: typeof ctx.waitUntil,
          }));
        },
      };`,
      fakeHost(),
      raw,
    );
    assert.equal(result.outcome, "dropped");
    assert.deepEqual(seen(result), {
      from: "alice+list@sender.example",
      to: "bob+shopping@example.com",
      subject: "Hello there",
      messageId: "<m1@sender.example>",
      trace: "one, two",
      isHeaders: true,
      rawIsStream: true,
      first: raw.toString("utf8"),
      secondLength: raw.length,
      rawSize: raw.length,
      self: "exported-object",
      waitUntil: "function",
    });
  });

  it("forwards with the host's messageId, and raw stays readable after forward()", async () => {
    const host = fakeHost();
    const result = await run(
      "forwarder",
      `export default { async email(message) {
        const sent = await message.forward("carol@dest.example");
        console.log("seen " + JSON.stringify({ sent, after: (await new Response(message.raw).text()).length }));
      } };`,
      host,
    );
    assert.equal(result.outcome, "forwarded");
    assert.deepEqual(result.forwards, [{ to: "carol@dest.example", messageId: "<fwd-1@mailroute.test>" }]);
    assert.deepEqual(seen(result), { sent: { messageId: "<fwd-1@mailroute.test>" }, after: SAMPLE_MESSAGE.length });
    assert.deepEqual(host.forwarded, [{ rcptTo: "carol@dest.example", headers: [] }]);
  });

  it("adds X-* headers to a forward and drops any other header with a log line, as Cloudflare does", async () => {
    const host = fakeHost();
    const result = await run(
      "header-adder",
      `export default { async email(message) {
        await message.forward("carol@dest.example", new Headers({ "X-Forwarded-By": "worker", "Reply-To": "evil@example.net" }));
      } };`,
      host,
    );
    assert.equal(result.outcome, "forwarded");
    assert.deepEqual(host.forwarded[0]?.headers, [["x-forwarded-by", "worker"]]);
    assert.ok(result.logs.some((log) => log.level === "warn" && log.message.includes('"reply-to"') && log.message.includes("only X-* headers")));
  });

  it("passes every forward() refusal to the worker verbatim, as an Error it can branch on", async () => {
    const refusals = [
      "destination address is invalid",
      "destination address not verified",
      "message already forwarded to this destination",
      "cannot forward email to same worker",
      "could not send email: Unknown error: transient error (451)",
      "could not send email: Unknown error: permanent error (550)",
    ];
    const forwardFailures = Object.fromEntries(refusals.map((text, i) => [`d${i}@dest.example`, text]));
    const result = await run(
      "refused",
      `export default { async email(message) {
        const errors = [];
        for (let i = 0; i < ${refusals.length}; i++) {
          try { await message.forward("d" + i + "@dest.example"); } catch (e) { errors.push({ isError: e instanceof Error, name: e.name, message: e.message }); }
        }
        console.log("seen " + JSON.stringify({ errors }));
      } };`,
      fakeHost({ forwardFailures }),
    );
    assert.deepEqual(
      (seen(result) as { errors: unknown[] }).errors,
      refusals.map((message) => ({ isError: true, name: "Error", message })),
    );
    // every attempt failed and the worker swallowed it: nothing was delivered
    assert.equal(result.outcome, "dropped");
    assert.deepEqual(result.forwards.map((forward) => forward.error), refusals);
  });

  it("setReject(reason) rejects the message with that reason", async () => {
    const result = await run("rejecter", `export default { email(message) { message.setReject("Address not allowed"); } };`);
    assert.equal(result.outcome, "rejected");
    assert.equal(result.rejectReason, "Address not allowed");
  });

  it("a handler that throws gives outcome error with the thrown text, keeping the forwards it made", async () => {
    const result = await run(
      "thrower",
      `export default { async email(message) {
        await message.forward("carol@dest.example");
        throw new Error("forwarding error: backup unreachable");
      } };`,
    );
    assert.equal(result.outcome, "error");
    assert.equal(result.error, "forwarding error: backup unreachable");
    assert.deepEqual(result.forwards, [{ to: "carol@dest.example", messageId: "<fwd-1@mailroute.test>" }]);
    assert.ok(result.logs.some((log) => log.level === "error" && log.message.includes("backup unreachable")));
  });

  it("a handler that finishes without forward, reject or reply drops the message", async () => {
    const result = await run("idle", `export default { async email() {} };`);
    assert.equal(result.outcome, "dropped");
    assert.deepEqual(result.forwards, []);
  });

  it("awaits ctx.waitUntil() promises before answering", async () => {
    const host = fakeHost();
    const result = await run(
      "background",
      `export default { email(message, env, ctx) {
        ctx.waitUntil(new Promise((resolve) => setTimeout(resolve, 100)).then(() => message.forward("late@dest.example")));
      } };`,
      host,
    );
    assert.equal(result.outcome, "forwarded");
    assert.deepEqual(host.forwarded.map((forward) => forward.rcptTo), ["late@dest.example"]);
  });

  it("keeps module state between invocations of one version, and starts a new version fresh", async () => {
    const bundle = `let count = 0; export default { email() { count++; console.log("seen " + JSON.stringify({ count })); } };`;
    assert.deepEqual(seen(await run("counter", bundle)), { count: 1 });
    assert.deepEqual(seen(await run("counter", bundle)), { count: 2 });
    assert.deepEqual(seen(await run("counter", `${bundle}\n// v2`, fakeHost(), SAMPLE_MESSAGE, "v2")), { count: 1 });
  });

  it("captures console output per invocation, including the module's load-time lines", async () => {
    const bundle = `console.info("module loaded");
      export default { async email(message) {
        const tag = message.headers.get("subject");
        console.log("start", tag);
        await new Promise((resolve) => setTimeout(resolve, tag === "slow" ? 80 : 10));
        console.warn("end", tag, { nested: [1, 2] });
      } };`;
    const [slow, fast] = await Promise.all([
      run("logger", bundle, fakeHost(), rawMessage({ Subject: "slow" })),
      run("logger", bundle, fakeHost(), rawMessage({ Subject: "fast" })),
    ]);
    const lines = (result: InvocationResult) => result.logs.map((log) => `${log.level} ${log.message}`).filter((line) => !line.includes("module loaded"));
    assert.deepEqual(lines(slow), ["log start slow", 'warn end slow {"nested":[1,2]}']);
    assert.deepEqual(lines(fast), ["log start fast", 'warn end fast {"nested":[1,2]}']);
    assert.equal([...slow.logs, ...fast.logs].filter((log) => log.message === "module loaded").length, 1);
  });

  it("runs a WorkerEntrypoint class's email() with this.env", async () => {
    const result = await runtime.invoke(
      workerDefinition({
        account: "message-api",
        name: "entrypoint-class",
        vars: { GREETING: "hi" },
        bundle: `import { WorkerEntrypoint } from "cloudflare:workers";
          export default class extends WorkerEntrypoint { async email(message) { message.setReject(this.env.GREETING); } }`,
      }),
      { ...ENVELOPE, raw: SAMPLE_MESSAGE },
      fakeHost(),
    );
    assert.equal(result.rejectReason, "hi");
  });

  it("reports a module without an email() handler as an error", async () => {
    const result = await run("fetch-only", `export default { fetch() { return new Response("ok"); } };`);
    assert.equal(result.outcome, "error");
    assert.equal(result.error, "Handler does not export an email() function.");
  });
});
