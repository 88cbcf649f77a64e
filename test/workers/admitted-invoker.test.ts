import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { admittedInvoker } from "../../src/workers/admitted-invoker.ts";
import { InvocationLimiter } from "../../src/workers/invocation-limiter.ts";
import type { EmailInvocation, HostHandlers, InvocationResult } from "../../src/workers/worker-types.ts";
import { MapKvStore, workerDefinition } from "./fake-host.ts";

const handlers = { kv: new MapKvStore() } as unknown as HostHandlers;
const fetchCall = (bytes: number): EmailInvocation => ({
  from: "",
  to: "",
  raw: Buffer.alloc(0),
  handler: { kind: "fetch", method: "POST", url: "http://example.com/hook", headers: [], body: Buffer.alloc(bytes) },
});

describe("fetch() and queue() invocations take admission like worker mail", () => {
  it("waits for the worker's share, runs nothing without a lease, and hands the rest of the deadline on", async () => {
    const limiter = new InvocationLimiter({ maxRunning: 4, maxPerAccount: 4, maxPerWorker: 1, maxBytes: 1024 });
    const calls: { deadlineMs: number }[] = [];
    const invoke = admittedInvoker({
      limiter,
      deadlineMs: 400,
      maxWaitShare: 0.5,
      invoke: async (_definition, _invocation, _handlers, options): Promise<InvocationResult> => {
        calls.push(options);
        return { outcome: "dropped", forwards: [], logs: [], durationMs: 0, response: { status: 200, statusText: "OK", headers: [], body: "" } };
      },
    });
    const definition = workerDefinition({ account: "acct", name: "hook", bundle: "export default {}" });
    const held = await limiter.acquire({ account: "acct", worker: "hook", bytes: 0 }, 0);
    assert.ok(held !== null);

    const refused = await invoke(definition, fetchCall(10), handlers);
    assert.equal(refused.outcome, "timeout");
    assert.match(refused.error ?? "", /no capacity for this worker within 200 ms/);
    assert.equal(calls.length, 0);

    const waiting = invoke(definition, fetchCall(10), handlers);
    setTimeout(() => held.release(), 50);
    const ran = await waiting;
    assert.equal(ran.response?.status, 200);
    assert.equal(calls.length, 1);
    assert.ok(calls[0]!.deadlineMs < 400 && calls[0]!.deadlineMs > 0, `deadline ${calls[0]!.deadlineMs}`);
    assert.equal(limiter.running, 0, "the lease is released after the invocation");

    // the request body counts against the message-memory budget
    const blocker = new InvocationLimiter({ maxRunning: 4, maxBytes: 100 });
    await blocker.acquire({ account: "acct", worker: "other", bytes: 60 }, 0);
    const blocked = await admittedInvoker({ limiter: blocker, deadlineMs: 40, maxWaitShare: 0.5, invoke: async () => { throw new Error("must not run"); } })(definition, fetchCall(60), handlers);
    assert.equal(blocked.outcome, "timeout");
  });
});
