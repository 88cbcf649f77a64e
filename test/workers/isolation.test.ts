import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { WorkerRuntime, type RuntimeEvent } from "../../src/workers/worker-runtime.ts";
import type { InvocationResult, WorkerDefinition } from "../../src/workers/worker-types.ts";
import { describeInternalError } from "../../src/workers/internal-error-log.ts";
import { fakeHost, MapKvStore, rawMessage, SAMPLE_MESSAGE, workerDefinition } from "./fake-host.ts";

const ENVELOPE = { from: "alice@sender.example", to: "bob@example.com", raw: SAMPLE_MESSAGE };

const events: RuntimeEvent[] = [];
// a generous start bound: on a loaded test machine a healthy process may take seconds to start
const runtime = new WorkerRuntime({ memoryLimitMb: 128, startTimeoutMs: 20_000, onEvent: (event) => events.push(event) });
// only for a module that never finishes loading: its start must time out, so soon
const impatientRuntime = new WorkerRuntime({ startTimeoutMs: 3000 });
// only loopback traffic in these tests: the sink listens on 127.0.0.1 and only this runtime may reach it
const allowingRuntime = new WorkerRuntime({ outboundAllow: ["127.0.0.1/32"] });

let sink: Server;
let sinkUrl = "";
const sinkRequests: { method: string; body: string }[] = [];

before(async () => {
  sink = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    request.on("end", () => {
      sinkRequests.push({ method: request.method ?? "", body });
      response.end("received");
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
  sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/hook`;
});

after(async () => {
  await Promise.all([runtime.dispose(), allowingRuntime.dispose(), impatientRuntime.dispose()]);
  sink.close();
});

function define(account: string, name: string, bundle: string, fields: Partial<WorkerDefinition> = {}): WorkerDefinition {
  return workerDefinition({ account, name, bundle, ...fields });
}

function seen(result: InvocationResult): unknown {
  const line = result.logs.find((log) => log.message.startsWith("seen "));
  assert.ok(line, `no observation in ${JSON.stringify(result)}`);
  return JSON.parse(line.message.slice(5));
}

const COUNTER = `let count = 0; export default { email(message) { count++; console.log("seen " + count); } };`;

describe("Email Worker isolation", () => {
  it("times out an infinite loop at its deadline while another account's worker keeps running, then recovers", async () => {
    const looping = define("loop-account", "spinner", `export default { email(message) { if (message.headers.get("subject") === "Hello there") { while (true) {} } } };`);
    const neighbour = define("quiet-account", "counter", COUNTER);
    const sibling = define("loop-account", "counter", COUNTER);
    // warm every worker so the race below is about running, not starting
    await runtime.invoke(neighbour, ENVELOPE, fakeHost());
    await runtime.invoke(looping, { ...ENVELOPE, raw: rawMessage({ Subject: "warm-up" }) }, fakeHost());
    await runtime.invoke(sibling, ENVELOPE, fakeHost());

    const finished: string[] = [];
    const hung = runtime.invoke(looping, ENVELOPE, fakeHost(), { deadlineMs: 2500 }).then((result) => (finished.push("hung"), result));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const siblingDuringLoop = runtime.invoke(sibling, ENVELOPE, fakeHost(), { deadlineMs: 10_000 });
    const meanwhile = await runtime.invoke(neighbour, ENVELOPE, fakeHost());
    finished.push("neighbour");

    const result = await hung;
    assert.deepEqual(finished, ["neighbour", "hung"]);
    assert.equal(meanwhile.outcome, "dropped");
    assert.equal(seen(meanwhile), 2);
    assert.equal(result.outcome, "timeout");
    assert.equal(result.error, "worker did not finish within 2500 ms");
    // the looping account's process was killed: its other invocation in flight says why
    const siblingResult = await siblingDuringLoop;
    assert.equal(siblingResult.outcome, "error");
    assert.match(siblingResult.error ?? "", /another invocation of this account ran past its deadline/);
    // a fresh process serves the account again (module state starts over)
    assert.equal(seen(await runtime.invoke(sibling, ENVELOPE, fakeHost())), 1);
  });

  it("abandons an invocation that only waits past its deadline, restarting its account's process and refusing its late calls", async () => {
    const waiter = define("wait-account", "waiter", `let count = 0;
      export default { async email(message) {
        count++;
        console.log("seen " + count);
        if (message.headers.get("subject") === "Hello there") {
          await new Promise((resolve) => setTimeout(resolve, 1000));
          await message.forward("late@dest.example");
        }
      } };`);
    const warmUp = { ...ENVELOPE, raw: rawMessage({ Subject: "warm-up" }) };
    assert.equal(seen(await runtime.invoke(waiter, warmUp, fakeHost())), 1);
    const host = fakeHost();
    const result = await runtime.invoke(waiter, ENVELOPE, host, { deadlineMs: 400 });
    assert.equal(result.outcome, "timeout");
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.deepEqual(host.forwarded, []);
    // the rule: after a deadline the account's runtime is restarted (module state starts over)
    assert.equal(seen(await runtime.invoke(waiter, warmUp, fakeHost())), 1);
  });

  it("refuses worker fetch() to private and loopback addresses", async () => {
    const result = await runtime.invoke(
      define("fetch-account", "prober", `export default { async email() {
        const outcome = async (url) => { try { await fetch(url, { method: "POST", body: "x", signal: AbortSignal.timeout(3000) }); return "reached"; } catch (e) { return "refused"; } };
        console.log("seen " + JSON.stringify([await outcome("http://10.0.0.1/"), await outcome(${JSON.stringify(sinkUrl)}), await outcome("http://169.254.169.254/latest/meta-data")]));
      } };`),
      ENVELOPE,
      fakeHost(),
    );
    assert.deepEqual(seen(result), ["refused", "refused", "refused"]);
    assert.equal(sinkRequests.length, 0);
  });

  it("lets a worker reach a loopback webhook on the runtime's allow-list", async () => {
    const result = await allowingRuntime.invoke(
      define("webhook-account", "notifier", `export default { async email(message, env, ctx) {
        const response = await fetch(${JSON.stringify(sinkUrl)}, { method: "POST", body: JSON.stringify({ from: message.from }) });
        console.log("seen " + JSON.stringify(await response.text()));
      } };`),
      ENVELOPE,
      fakeHost(),
    );
    assert.equal(seen(result), "received");
    assert.deepEqual(sinkRequests, [{ method: "POST", body: '{"from":"alice@sender.example"}' }]);
  });

  it("contains a memory bomb to its own account, within the cap", async () => {
    const bomb = define("bomb-account", "bomb", `export default { email() { const hoard = []; for (;;) hoard.push(new Array(1e6).fill(Math.random())); } };`);
    const bystander = define("bystander-account", "counter", COUNTER);
    await runtime.invoke(bystander, ENVELOPE, fakeHost());
    const result = await runtime.invoke(bomb, ENVELOPE, fakeHost(), { deadlineMs: 20_000 });
    // The issue requires a memory cap; on Linux (where mailroute runs) it must be enforced.
    assert.ok(!events.some((event) => event.event === "worker-runtime.memory-cap-unavailable"), "the memory cap is enforceable here (/proc and prlimit)");
    assert.equal(result.outcome, "error");
    assert.match(result.error ?? "", /exited unexpectedly \(crash or memory limit\)/);
    assert.equal(seen(await runtime.invoke(bystander, ENVELOPE, fakeHost())), 2);
  });

  it("refuses a worker whose module does not load, with workerd's words, while its account's other workers run on", async () => {
    const healthy = define("deploy-account", "counter", COUNTER);
    assert.equal(seen(await runtime.invoke(healthy, ENVELOPE, fakeHost())), 1);
    const broken = define("deploy-account", "broken", `export default { email( { };`);
    const result = await runtime.invoke(broken, ENVELOPE, fakeHost());
    assert.equal(result.outcome, "error");
    assert.match(result.error ?? "", /SyntaxError/);
    assert.deepEqual(await runtime.check(broken), { ok: false, error: result.error });
    assert.deepEqual(await runtime.check(healthy), { ok: true });
    // the healthy worker kept its process (and so its module state)
    assert.equal(seen(await runtime.invoke(healthy, ENVELOPE, fakeHost())), 2);
  });

  it("refuses a worker whose module-level code never finishes, after the start timeout", async () => {
    const stuck = define("stuck-account", "stuck", `while (true) {} export default { email() {} };`);
    const result = await impatientRuntime.invoke(stuck, ENVELOPE, fakeHost());
    assert.equal(result.outcome, "error");
    assert.equal(result.error, "worker did not start within 3000 ms (module-level code still running)");
  });

  it("keeps the host API out of the worker's reach: no specifier imports its module", async () => {
    const prober = define("reach-account", "importer", `export default { async email() {
        const outcomes = [];
        for (const name of ["./mailroute-bindings.js", "mailroute-bindings.js", "/mailroute-bindings.js", "miniflare-internal:wrapped:mailroute-host-bindings"]) {
          try { const module = await import(name); outcomes.push(typeof module.default); } catch (e) { outcomes.push("refused"); }
        }
        console.log("seen " + JSON.stringify(outcomes));
      } };`);
    assert.deepEqual(seen(await runtime.invoke(prober, ENVELOPE, fakeHost())), ["refused", "refused", "refused", "refused"]);
    const statically = define("reach-account", "static-importer", `import bindings from "./mailroute-bindings.js"; export default { email() { console.log(typeof bindings.call); } };`);
    const check = await runtime.check(statically);
    assert.equal(check.ok, false);
    assert.match(check.ok ? "" : check.error, /No such module "mailroute-bindings\.js"/);
  });

  it("refuses host calls made under an invocation state the entry worker did not open", async () => {
    const kv = new MapKvStore();
    await kv.put("marks", "k", new TextEncoder().encode("value"), {});
    const forger = define("forge-account", "forger", `import capture from "./mailroute-console.js";
      export default { async email(message, env) {
        const real = capture.als.getStore();
        const forged = { id: real.id, logs: [], logsDropped: 0, waits: [], calls: new Set(), rejectReason: undefined, done: false };
        const attempt = async (f) => { try { return await f(); } catch (e) { return "refused: " + e.message; } };
        console.log("seen " + JSON.stringify([
          await env.MAP.get("k"),
          await attempt(() => capture.als.run(forged, () => env.MAP.get("k"))),
        ]));
      } };`, { kv: [{ binding: "MAP", namespace: "marks" }] });
    const [own, forged] = seen(await runtime.invoke(forger, ENVELOPE, fakeHost({ kv }))) as string[];
    assert.equal(own, "value", "the worker's own KV read works");
    assert.match(forged ?? "", /^refused: Cannot perform I\/O on behalf of a different request/);
  });

  it("puts the reason behind workerd's opaque internal error for a refused fetch() in the worker's logs and error", async () => {
    const result = await runtime.invoke(
      define("reason-account", "fetcher", `export default { async email() {
        try { await fetch("http://10.0.0.1/"); } catch (e) { console.log("caught " + e.message); }
        await fetch("http://169.254.169.254/latest/meta-data");
      } };`),
      ENVELOPE,
      fakeHost(),
    );
    assert.equal(result.outcome, "error");
    const caught = result.logs.find((log) => log.message.startsWith("caught "));
    const reference = /reference = (\w+)/.exec(caught?.message ?? "")?.[1];
    assert.ok(reference, JSON.stringify(result.logs));
    const explained = result.logs.find((log) => log.message.startsWith(`mailroute: internal error ${reference}: `));
    assert.match(explained?.message ?? "", /fetch\(\) refused by the network policy/);
    assert.match(result.error ?? "", /^internal error; reference = \w+ \(fetch\(\) refused by the network policy/);
  });

  it("words workerd's logged reasons for the operator: network policy, DNS, anything else without workerd's source location", () => {
    // lines exactly as workerd 1.20260730 writes them (its "stack:" line carries the id)
    assert.match(describeInternalError("e = kj/async-io-unix.c++:1650: failed: connect() blocked by restrictPeers()"), /^fetch\(\) refused by the network policy/);
    assert.equal(
      describeInternalError("e = kj/async-io-unix.c++:1293: failed: DNS lookup failed.; params.host = no-such-host.invalid; params.service = ; gai_strerror(status) = Name or service not known"),
      "fetch() failed: DNS lookup of no-such-host.invalid failed: Name or service not known",
    );
    assert.equal(describeInternalError("e = kj/compat/tls.c++:221: disconnected: peer disconnected; sentryErrorContext = jsgInternalError"), "peer disconnected");
  });

  it("names the worker's modules in stack traces, never the server's install path", async () => {
    const result = await runtime.invoke(define("trace-account", "thrower", `export default { email() { throw new Error("upstream refused"); } };`), ENVELOPE, fakeHost());
    const uncaught = result.logs.find((log) => log.message.startsWith("Uncaught Error: upstream refused"));
    assert.match(uncaught?.message ?? "", /at Object\.email \(file:\/\/\/user\.js:1:\d+\)/);
    for (const log of result.logs) assert.ok(!log.message.includes(process.cwd()), log.message);
  });

  it("runs a redeployed version on its next invocation", async () => {
    const v1 = define("redeploy-account", "greeter", `export default { email(message) { message.setReject("v1"); } };`);
    const v2 = { ...v1, version: "v2", bundle: `export default { email(message) { message.setReject("v2"); } };` };
    assert.equal((await runtime.invoke(v1, ENVELOPE, fakeHost())).rejectReason, "v1");
    assert.equal((await runtime.invoke(v2, ENVELOPE, fakeHost())).rejectReason, "v2");
    // a secret changed without a new version still takes effect
    const v2b = { ...v2, secrets: { REASON: "rotated" }, bundle: `export default { email(message, env) { message.setReject(env.REASON); } };` };
    assert.equal((await runtime.invoke(v2b, ENVELOPE, fakeHost())).rejectReason, "rotated");
  });
});
