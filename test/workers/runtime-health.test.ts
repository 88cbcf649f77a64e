/**
 * Worker runtime health with real workerd processes: what /healthz and /readyz say about an
 * account whose process was killed, ran past its deadline or could not start, and that a
 * recovered account reads "ok" again — read without ever starting a process to check one.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import Fastify from "fastify";
import { healthRoutes } from "../../src/api/health-routes.ts";
import { WorkerRuntime, type AccountRuntimeHealth } from "../../src/workers/worker-runtime.ts";
import { fakeHost, SAMPLE_MESSAGE, workerDefinition } from "./fake-host.ts";

const ENVELOPE = { from: "alice@sender.example", to: "bob@example.com", raw: SAMPLE_MESSAGE };
const COUNTER = `let count = 0; export default { email(message) { count++; console.log("seen " + count); } };`;

// a generous start bound: on a loaded test machine a healthy process may take seconds to start
const runtime = new WorkerRuntime({ memoryLimitMb: null, startTimeoutMs: 20_000 });
const app = Fastify();

interface Health {
  status: number;
  body: { result: { status: string; failing: string[]; degraded: string[]; workers?: string; checks?: { workers: { status: string; state: string; runtimes: Record<string, unknown>[] } } } };
}

async function get(path: string): Promise<Health> {
  const response = await fetch(`http://127.0.0.1:${(app.server.address() as { port: number }).port}${path}`);
  return { status: response.status, body: (await response.json()) as Health["body"] };
}

function account(name: string): AccountRuntimeHealth {
  const found = runtime.health().accounts.find((entry) => entry.account === name);
  assert.ok(found, `no runtime for ${name}`);
  return found;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// a killed child is gone once Node has reaped it: bounded in count and time
async function waitUntilGone(pid: number): Promise<void> {
  for (let attempt = 0; attempt < 200 && processExists(pid); attempt++) await new Promise((resolve) => setTimeout(resolve, 25));
  assert.equal(processExists(pid), false, `workerd ${pid} still exists after SIGKILL`);
}

before(async () => {
  await app.register(healthRoutes, { smtpListening: () => true, pingStore: async () => 1, workerRuntime: () => runtime.health(), accepting: () => true });
  await app.listen({ port: 0, host: "127.0.0.1" });
});

after(async () => {
  await app.close();
  await runtime.dispose();
});

describe("worker runtime health (real workerd)", () => {
  it("reads ok with no runtime and never starts one to check", async () => {
    const fresh = new WorkerRuntime({ startTimeoutMs: 20_000 });
    try {
      for (let i = 0; i < 3; i++) assert.deepEqual(fresh.health(), { state: "ok", accounts: [] });
      assert.deepEqual(fresh.processes(), []);
    } finally {
      await fresh.dispose();
    }
  });

  it("reports an account whose workerd was killed as degraded (crashed), then ok after the next message", async () => {
    const counter = workerDefinition({ account: "killed-account", name: "counter", bundle: COUNTER });
    assert.equal((await runtime.invoke(counter, ENVELOPE, fakeHost())).outcome, "dropped");
    const pid = account("killed-account").pid;
    assert.ok(pid !== null, "workerd pid known");
    assert.equal(account("killed-account").state, "ok");
    let health = await get("/healthz");
    assert.deepEqual([health.status, health.body.result.status, health.body.result.checks!.workers.state], [200, "ok", "ok"]);

    process.kill(pid, "SIGKILL");
    await waitUntilGone(pid);
    const killed = account("killed-account");
    assert.deepEqual([killed.state, killed.reason], ["degraded", "crashed"]);
    assert.match(killed.detail ?? "", /exited unexpectedly/);
    health = await get("/healthz");
    assert.deepEqual([health.status, health.body.result.status, health.body.result.degraded], [200, "degraded", ["workers"]]);
    const reported = health.body.result.checks!.workers.runtimes.find((entry) => entry["account"] === "killed-account")!;
    assert.deepEqual([reported["state"], reported["reason"]], ["degraded", "crashed"]);
    const ready = await get("/readyz");
    assert.deepEqual([ready.status, ready.body.result.workers], [200, "degraded"]);
    // reading health twice starts nothing
    assert.equal(account("killed-account").pid, pid);
    assert.equal(processExists(pid), false);

    // the next message starts a new process and the account has recovered
    assert.equal((await runtime.invoke(counter, ENVELOPE, fakeHost())).outcome, "dropped");
    const recovered = account("killed-account");
    assert.equal(recovered.state, "ok");
    assert.ok(recovered.pid !== null && recovered.pid !== pid, "a new workerd serves the account");
    health = await get("/healthz");
    assert.deepEqual([health.status, health.body.result.status], [200, "ok"]);
  });

  it("reports a process retired at a deadline as degraded until the next message starts a fresh one", async () => {
    const looping = workerDefinition({ account: "deadline-account", name: "spinner", bundle: `export default { email() { while (true) {} } };` });
    const result = await runtime.invoke(looping, ENVELOPE, fakeHost(), { deadlineMs: 2000 });
    assert.equal(result.outcome, "timeout");
    const retired = account("deadline-account");
    assert.equal(retired.state, "degraded");
    assert.ok(retired.reason === "deadline" || retired.reason === "unresponsive", `reason ${retired.reason}`);
    assert.equal((await get("/healthz")).status, 200);

    const counter = workerDefinition({ account: "deadline-account", name: "counter", bundle: COUNTER });
    assert.equal((await runtime.invoke(counter, ENVELOPE, fakeHost())).outcome, "dropped");
    assert.equal(account("deadline-account").state, "ok");
  });

  it("reports an account whose only worker cannot start as failed (503), with no workerd text in the body", async () => {
    const broken = workerDefinition({ account: "broken-account", name: "broken", bundle: `export default { email( { };` });
    const result = await runtime.invoke(broken, ENVELOPE, fakeHost());
    assert.equal(result.outcome, "error");
    const failed = account("broken-account");
    assert.deepEqual([failed.state, failed.reason, failed.pid], ["failed", "start-failed", null]);
    const health = await get("/healthz");
    assert.deepEqual([health.status, health.body.result.failing], [503, ["workers"]]);
    assert.doesNotMatch(JSON.stringify(health.body), /SyntaxError|email\(/, "workerd's words (which quote the source) stay in the logs");
    const ready = await get("/readyz");
    assert.deepEqual([ready.status, ready.body.result.failing], [503, ["workers"]]);

    // fixed and redeployed: the account starts and reads ok again
    const fixed = workerDefinition({ account: "broken-account", name: "broken", bundle: COUNTER });
    assert.equal((await runtime.invoke(fixed, ENVELOPE, fakeHost())).outcome, "dropped");
    assert.equal(account("broken-account").state, "ok");
    assert.equal((await get("/healthz")).status, 200);
  });
});
