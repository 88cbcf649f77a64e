import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DeliveryTargetError, type DeliveryTarget } from "../../src/delivery/mx-resolver.ts";
import { cachingTargetResolver } from "../../src/delivery/target-cache.ts";

const target: DeliveryTarget = { exchange: "mx.example.net", address: "127.0.0.2", port: 25, family: 4, preference: 10 };

describe("cachingTargetResolver", () => {
  it("answers repeated lookups from the cache until the TTL passes", async () => {
    let calls = 0;
    let clock = 0;
    const resolve = cachingTargetResolver(async () => (calls++, [target]), { ttlMs: 1000, now: () => clock });
    assert.deepEqual(await resolve("Example.net"), [target]);
    await resolve("example.net");
    assert.equal(calls, 1);
    clock = 1001;
    await resolve("example.net");
    assert.equal(calls, 2);
  });

  it("shares one lookup between concurrent callers and never caches a failure", async () => {
    let calls = 0;
    let fail = true;
    const resolve = cachingTargetResolver(async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 10));
      if (fail) throw new DeliveryTargetError("DNS_TEMPFAIL", "example.net", "timeout");
      return [target];
    });
    const results = await Promise.allSettled([resolve("example.net"), resolve("example.net")]);
    assert.equal(calls, 1);
    assert.ok(results.every((r) => r.status === "rejected"));
    fail = false;
    assert.deepEqual(await resolve("example.net"), [target]);
    assert.equal(calls, 2);
  });

  it("stays within its entry bound", async () => {
    let calls = 0;
    const resolve = cachingTargetResolver(async () => (calls++, [target]), { maxEntries: 2 });
    await resolve("a.test");
    await resolve("b.test");
    await resolve("c.test");
    await resolve("a.test");
    assert.equal(calls, 4, "a.test was evicted");
  });
});
