import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { WorkerRuntime, type RuntimeEvent } from "../../src/workers/worker-runtime.ts";
import type { InvocationResult, WorkerDefinition } from "../../src/workers/worker-types.ts";
import { fakeHost, rawMessage, SAMPLE_MESSAGE, workerDefinition } from "./fake-host.ts";

const ENVELOPE = { from: "alice@sender.example", to: "bob@example.com", raw: SAMPLE_MESSAGE };

const events: RuntimeEvent[] = [];
const runtime = new WorkerRuntime({ memoryLimitMb: 128, startTimeoutMs: 5000, onEvent: (event) => events.push(event) });
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
  await Promise.all([runtime.dispose(), allowingRuntime.dispose()]);
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
    const result = await runtime.invoke(stuck, ENVELOPE, fakeHost());
    assert.equal(result.outcome, "error");
    assert.equal(result.error, "worker did not start within 5000 ms (module-level code still running)");
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
